"""The exceptions of asymsense.

The CLI turns `InputError` into exit code 2 and `DivergenceError` into exit
code 3. The checks that raise InputError live in `asymsense.validation`.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: the message names the parameter, file or line at fault.

    `parameter` is the name of the parameter at fault when there is one; the
    message then starts with it (`step must be ...`), so a caller that knows
    where the value came from (a flag, a config file's line) can put that in
    front of the rest (`detail`)."""

    def __init__(self, message: str, parameter: str | None = None):
        super().__init__(message)
        self.parameter = parameter

    @property
    def detail(self) -> str:
        """The message without the leading parameter name."""
        message = str(self)
        if self.parameter is not None and message.startswith(self.parameter + " "):
            return message[len(self.parameter) + 1:]
        return message


class DivergenceError(RuntimeError):
    """The loss became non-finite or exploded; the message names the step size."""

    def __init__(self, message: str, step_size: float | None = None, iteration: int | None = None):
        super().__init__(message)
        self.step_size = step_size
        self.iteration = iteration
