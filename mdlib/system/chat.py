"""``python -m mdlib chat``: talk to the dialogue system from a terminal or a pipe.

    printf 'hi\\nI want a comedy\\n' | python -m mdlib chat --domain movie
    printf 'hi\\nI want a comedy\\n' | python -m mdlib chat --domain movie --policy result.policy.pt

``--policy`` replaces the rule-based threshold policy by a policy trained with
``python -m mdlib policy --out result.json`` (which writes ``result.policy.pt``).

One reply line per input line (so piped output lines up with the input); at the end of
input the chat exits with status 0. An empty or very long line, or bytes that are not
UTF-8, get a one-line message in place of a reply and the chat goes on. ``/reset``
starts a new dialogue; after the system says goodbye the next line starts a new one.
In a terminal the greeting and a prompt are shown too.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO, TextIO

from mdlib import paths
from mdlib.data.domains import get_domain
from mdlib.errors import MdlibError
from mdlib.system.pipeline import MAX_INPUT_CHARS, DialogueSystem, NeuralGenerator, TemplateGenerator

DEFAULT_CHECKPOINT = "generator"   # runs/generator/checkpoint.pt
HOW_TO_TRAIN = "make one with `python -m mdlib train --input acts --out runs/generator` (or chat with --templates)"


def default_checkpoint() -> Path:
    """``runs/generator``: where the chat looks for a generator when none is named."""
    return paths.RUNS_DIR / DEFAULT_CHECKPOINT


def build_system(domain: str, checkpoint: str | None, templates: bool, seed: int = 0,
                 err: TextIO | None = None, policy: str | None = None) -> DialogueSystem:
    """The chat's :class:`DialogueSystem`.

    A named ``checkpoint`` that does not exist is an error saying how to make one. With
    no checkpoint named and none at :func:`default_checkpoint`, the chat says so on
    ``err`` and uses the template realiser (as ``--templates`` does explicitly).
    ``policy``: a policy file (:func:`mdlib.dm.learned.load_policy`; its errors name the
    file); ``None`` keeps the threshold policy.
    """
    err = err or sys.stderr
    trained = None
    if policy is not None:
        from mdlib.dm.learned import load_policy

        trained = load_policy(policy)
        adapted = trained.config.get("domain")
        if adapted not in (None, get_domain(domain).name):
            print(f"note: the policy in {policy} was adapted to {adapted}; using it for {domain}", file=err)
    if templates:
        generator = TemplateGenerator(domain, seed)
    else:
        path = Path(checkpoint) if checkpoint else default_checkpoint()
        exists = path.is_file() or (path / "checkpoint.pt").is_file()
        if not exists and checkpoint:
            raise MdlibError(f"{path}: no such generator checkpoint; {HOW_TO_TRAIN}")
        if exists:
            generator = NeuralGenerator.from_checkpoint(path)
        else:
            print(f"note: no generator checkpoint at {path}; {HOW_TO_TRAIN}. "
                  "Using the template realiser for now.", file=err)
            generator = TemplateGenerator(domain, seed)
    return DialogueSystem(domain, generator, db_seed=0, policy=trained)


def _lines(stream: BinaryIO):
    for raw in iter(stream.readline, b""):
        yield raw


def chat_loop(system: DialogueSystem, stdin: BinaryIO, out: TextIO, err: TextIO, *,
              interactive: bool = False, show_acts: bool = False) -> int:
    """Read lines (bytes) from ``stdin`` until its end; write one reply line per input line.

    Raises:
        MdlibError: ``stdin`` cannot be read (any other input gets a reply line).
    """
    greeting = system.reset()
    if interactive:
        print(f"system: {greeting}", file=out, flush=True)
    ended = False
    while True:
        if interactive:
            print("you> ", end="", file=err, flush=True)
        try:
            raw = stdin.readline()
        except OSError as exc:  # stdin is a folder, a device that fails, ...
            raise MdlibError(f"cannot read standard input ({exc.strerror or exc})") from None
        if not raw:
            break
        try:
            text = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            print(f"(sorry: that line is not UTF-8 text (byte {exc.start}); please type it again)",
                  file=out, flush=True)
            continue
        if text.strip() == "/reset" or (ended and text.strip()):
            greeting = system.reset()
            ended = False
            if text.strip() == "/reset":
                print(greeting, file=out, flush=True)
                continue
        if len(text) > MAX_INPUT_CHARS:
            print(f"(sorry: that line has {len(text)} characters; please say it in at most "
                  f"{MAX_INPUT_CHARS})", file=out, flush=True)
            continue
        if not text.strip():
            print("(sorry: I got an empty line; tell me what you are looking for, e.g. 'I want a comedy')",
                  file=out, flush=True)
            continue
        try:
            reply = system.respond(text)
        except MdlibError as exc:
            print(f"(sorry: {exc})", file=out, flush=True)
            continue
        if show_acts:
            rec = system.history[-1]
            print(f"  parsed: {rec.parse}\n  system acts: {', '.join(map(str, rec.system_acts))}",
                  file=err, flush=True)
        print(reply, file=out, flush=True)
        ended = any(a.act == "goodbye" for a in system.last_acts)
    if interactive:
        print("", file=err)
    return 0


def run_chat(domain: str = "movie", checkpoint: str | None = None, templates: bool = False, seed: int = 0,
             show_acts: bool = False, policy: str | None = None) -> int:
    """The ``chat`` command (stdin, stdout, stderr of the process).

    Raises:
        MdlibError: standard input is closed (``chat <&-``), or the system cannot be built.
    """
    if sys.stdin is None:
        raise MdlibError("standard input is closed; pipe user lines into chat or run it in a terminal")
    system = build_system(domain, checkpoint, templates, seed, policy=policy)
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"chatting about {system.domain.name} ({system.generator.kind} generator, "
              f"{system.parser.kind} parser, {'learned' if policy else 'threshold'} policy); "
              "/reset starts over, Ctrl-D ends.", file=sys.stderr)
    return chat_loop(system, sys.stdin.buffer, sys.stdout, sys.stderr, interactive=interactive,
                     show_acts=show_acts)
