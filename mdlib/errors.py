"""The one exception type that the command line turns into a one-line message."""


class MdlibError(Exception):
    """An error caused by the user's input (file, parameter, checkpoint), not a bug.

    The CLI prints ``error: <message>`` and exits with status 1 instead of showing a
    traceback, so the message must say what was wrong and where: the file, the line,
    the field or parameter, and what was expected.
    """
