"""The one exception the CLI turns into a one-line message and an exit status."""


class ZooError(Exception):
    """A problem the user can fix: bad input, missing data, unknown name.

    The CLI prints ``Error: <message>`` on one line and exits with ``exit_code``.
    """

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code
