"""A component attached to the twin: stepped by the master clock, its outputs in the state.

:func:`attach` registers, with :meth:`SimClock.every`, a callback that at
every ``period_s`` steps the component by ``period_s`` and then writes its
declared cell outputs into :class:`TwinState` by name (``Component.get`` ->
``TwinState.set_field``, units and long name from the field's spec). The
twin knows the component only through that contract: nothing here imports a
model.

Face-centred outputs (e.g. the flood's ``surface_water__discharge_x``) do not
lie on the state's cell grid and are skipped: the state holds cell fields
only. Averaging them to cells would be a new quantity the component does not
declare; a component that wants one in the state should declare it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from twin.clock import Periodic, SimClock
from twin.component import Component
from twin.errors import ClockError, ValidationError
from twin.state import TwinState


@dataclass(eq=False)
class Attachment:
    """Handle of a component attached with :func:`attach`.

    Attributes
    ----------
    component : Component
    state : TwinState
    period_s : float
        Step of the component and interval of the writes (s).
    outputs : tuple of str
        The fields written to the state after every step.
    periodic : Periodic
        The clock's handle of the stepping callback.
    steps : int
        How many steps have run.
    """

    component: Component
    state: TwinState
    period_s: float
    outputs: tuple[str, ...]
    periodic: Periodic | None = field(default=None, repr=False)
    steps: int = 0

    def publish(self) -> None:
        """Write the outputs' current values into the state (what every tick does after stepping)."""
        for name in self.outputs:
            spec = self.component.spec(name)
            da = self.component.get(name)  # already a copy: the state may keep it
            self.state.set_field(name, da, spec.units, spec.doc, copy=False)

    def tick(self, t_s: float) -> None:
        """Step the component by ``period_s``, then publish (called by the clock at ``t_s``)."""
        elapsed = self.component.step(self.period_s)
        if not math.isclose(elapsed, self.period_s, rel_tol=1e-9, abs_tol=1e-9):
            raise ClockError(
                f"{self.component.name} stepped {elapsed!r} s when asked for {self.period_s!r} s at "
                f"t={t_s!r} s; a component attached to the clock must advance by the full period"
            )
        self.steps += 1
        self.publish()

    def cancel(self) -> None:
        """Stop stepping the component (the state keeps the fields last written)."""
        if self.periodic is not None:
            self.periodic.cancel()


def cell_outputs(component: Component) -> tuple[str, ...]:
    """The component's ``out``/``inout`` fields that live on cells and are held as arrays."""
    return tuple(name for name in component.output_var_names()
                 if component.spec(name).at == "cell" and component.spec(name).attr is not None)


def attach(
    component: Component,
    state: TwinState,
    clock: SimClock | None = None,
    *,
    period_s: float,
    outputs: Sequence[str] | None = None,
) -> Attachment:
    """Step ``component`` every ``period_s`` on the clock and write its outputs to ``state``.

    The outputs are written on attaching (the state then shows the
    component's starting values) and after every step. At each tick the
    component runs before the clock's ordinary process events of that
    instant (see :meth:`SimClock.every`), so processes see the stepped state.

    Parameters
    ----------
    component : Component
        Anything following :class:`twin.component.Component`.
    state : TwinState
        Receives the outputs; the component's cell grid must be the state's
        (``set_field`` checks the coordinates).
    clock : SimClock, optional
        Default: ``state.clock``.
    period_s : float
        Step (s), > 0.
    outputs : sequence of str, optional
        Fields to write; default :func:`cell_outputs` (every declared cell
        output held as an array).

    Returns
    -------
    Attachment
        Its :meth:`Attachment.cancel` stops the stepping.

    Raises
    ------
    ValidationError
        An output that is unknown, an input only, face-centred or not held
        as an array.
    ClockError
        A period that is not a positive number of seconds.
    """
    clock = state.clock if clock is None else clock
    names = cell_outputs(component) if outputs is None else tuple(outputs)
    for name in names:
        _check_output(component, name)
    period = _period(period_s)
    att = Attachment(component, state, period, names)
    att.publish()  # before registering: a grid mismatch leaves nothing scheduled
    att.periodic = clock.every(period, att.tick)
    return att


def _period(value: float) -> float:
    try:
        period = float(value)
    except (TypeError, ValueError) as exc:
        raise ClockError(f"period_s={value!r} is not a number of seconds") from exc
    if not (math.isfinite(period) and period > 0):
        raise ClockError(f"period_s={value!r} must be a finite number of seconds > 0")
    return period


def _check_output(component: Component, name: str) -> None:
    spec = component.spec(name)  # unknown name: ValidationError listing the fields
    if spec.intent == "in":
        raise ValidationError(
            f"outputs: {component.name}.{name} is an input (intent 'in'), not an output; "
            f"outputs: {list(component.output_var_names())}"
        )
    if spec.at != "cell":
        raise ValidationError(
            f"outputs: {component.name}.{name} lives on {spec.at}s, not on the state's cells; "
            f"cell outputs: {list(cell_outputs(component))}"
        )
    if spec.attr is None:
        raise ValidationError(
            f"outputs: {component.name}.{name} is not held as an array ({spec.doc})"
        )
