"""The one exception type that the command line turns into a one-line message."""


class MdlibError(Exception):
    """An error caused by the user's input (file, parameter, checkpoint), not a bug.

    The CLI prints ``error: <message>`` and exits with status 1 instead of showing a
    traceback, so the message must say what was wrong and where: the file, the line,
    the field or parameter, and what was expected.
    """


def lookup(registry, name, what: str, kind: type | None = None):
    """``registry[name]``, or ``name`` itself when it already is a ``kind`` instance.

    The one name lookup behind ``get_domain``, ``get_population``, ``get_profile`` ...

    Raises:
        MdlibError: ``unknown <what> 'name'; known <what>s: a, b, c`` for an unknown name.
    """
    if kind is not None and isinstance(name, kind):
        return name
    try:
        return registry[name]
    except (KeyError, TypeError):
        raise MdlibError(f"unknown {what} {name!r}; known {what}s: {', '.join(registry)}") from None
