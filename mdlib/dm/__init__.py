"""Dialogue management as reinforcement learning (meta-objective 3, notebook 06).

- :mod:`mdlib.dm.belief`: the belief tracker (per user slot a value and a confidence; defined in :mod:`mdlib.data.belief`);
- :mod:`mdlib.dm.threshold`: the reference threshold policy of SimDial and the pending-request tracker (defined in :mod:`mdlib.data.threshold`, the corpus generator's system side);
- :mod:`mdlib.dm.population`: user populations (ASR accuracy, patience, yes/no rate, ...);
- :mod:`mdlib.dm.env`: the data layer's simulated user as an environment (``reset(seed)``, ``step(action)``);
- :mod:`mdlib.dm.encoding`: act x slot state features and action mask;
- :mod:`mdlib.dm.policy`: a policy network with shared per-slot weights (one network, any domain);
- :mod:`mdlib.dm.rl`: REINFORCE with a leave-one-out baseline, batched rollouts, tasks, toy bandits;
- :mod:`mdlib.dm.metarl`: adaptation, pretraining, MAML and Reptile over policy-gradient inner loops;
- :mod:`mdlib.dm.learned`: a trained policy inside the end-to-end system (same features and
  action-to-acts mapping as the environment, through :class:`mdlib.dm.env.SystemState`), saved and loaded.
"""
