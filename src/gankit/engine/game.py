"""What a game declares: its players, its optimizer groups and its phases.

A game is a set of named networks (players) trained against each other. Each group of players has one
optimizer and one loss scaler; each phase updates one group with one loss function of a ``Context``. The
engine asks ``phases_at(step)`` at every step: which phases run is a function of the step alone, so a resumed
run needs no schedule state. k D steps per G step is ``repeat = k``; lazy regularisation is a phase with
``every = N`` (weight its loss by N); stages (pre-training, then joint training) are phases whose ``start``
and ``stop`` bound the steps they run in.

    class LSGAN(Game):
        def __init__(self, G, D):
            self.players = {"G": G, "D": D}
            self.groups = [Group("d", ["D"], lr=2e-4), Group("g", ["G"], lr=2e-4)]
            self.phases = [Phase("d", self.d_loss), Phase("g", self.g_loss)]
        ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from torch import Tensor, nn

from ..errors import GankitError

if TYPE_CHECKING:
    from .context import Context


def module_of(players: dict[str, nn.Module], name: str) -> nn.Module:
    """A player by name, or a part of one by a dotted path ("G.recovery"): a group may train part of a player
    (TimeGAN's recovery network is part of the generator that samples, and learns with the embedder)."""
    player, _, part = name.partition(".")
    if player not in players:
        raise KeyError(name)
    return players[player].get_submodule(part) if part else players[player]


@dataclass(frozen=True)
class Group:
    """One optimizer (and one fp16 loss scaler) over the parameters of ``players`` (player names, or dotted paths
    to parts of players).

    ``lr`` and ``betas`` default to the config's D settings for a group named "d" and G's otherwise.
    ``ema``: a moving average of each of these players is kept (``<player>_ema``), updated after each step of
    the group, with this decay (0: none). ``ema_warmup``: the decay is min(ema, (1 + s) / (10 + s)) at step s
    (TensorFlow's ExponentialMovingAverage with num_updates), so a short run's average is not mostly its
    initial weights.
    """
    name: str
    players: Sequence[str]
    lr: float | None = None
    betas: tuple[float, float] | None = None
    ema: float = 0.0
    ema_warmup: bool = False


@dataclass(frozen=True)
class Phase:
    """Update ``group`` with ``loss(ctx) -> Tensor``, ``repeat`` times in a row, at steps ``s`` with
    ``start <= s < stop`` and ``(s - start) % every == 0``.

    ``freeze``: players whose weights get no gradient while the loss is taken; "others" (the default) means
    every player outside the group (G's step through D needs D's input gradients, not its weights').
    ``after(ctx)``: called after each update (weight clipping, say). A loss function may return None: no update
    this time (TimeGAN's D learns only while its loss is above a level); it must decide alike on every rank.
    """
    group: str
    loss: Callable[["Context"], Tensor]
    repeat: int = 1
    every: int = 1
    start: int = 0
    stop: int | None = None
    freeze: Sequence[str] | str = "others"
    after: Callable[["Context"], None] | None = None

    def runs_at(self, step: int) -> bool:
        return step >= self.start and (self.stop is None or step < self.stop) and (step - self.start) % self.every == 0


class Game:
    """The base of every game: set ``players``, ``groups`` and ``phases`` in ``__init__``.

    Optional hooks: ``phases_at(step)`` (default: the declared phases that run at that step), ``fields()`` (more
    per-row data for ``ctx.batch()``), ``fast_settings()``,
    ``state()`` / ``load_state(tensors, meta)`` for the game's own checkpointed state, ``summarize(record)``
    to derive statistics from the window's means, ``watch(record, engine)`` to warn about what it sees,
    and ``product`` (what the trained game is for; see ``gankit.products``).
    """
    players: dict[str, nn.Module]
    groups: list[Group]
    phases: list[Phase]
    product: Any = None
    conditional: bool = False  # the data's labels are part of each batch and labels(n) draws them

    def phases_at(self, step: int) -> list[Phase]:
        return [p for p in self.phases if p.runs_at(step)]

    def setup(self, engine) -> None:
        """Called once the engine has placed the players on the device (the config and data are known)."""

    def fields(self) -> dict[str, Tensor]:
        """Per-row tensors batched with the data's ``x`` (same N): pix2pix's inputs ``"a"`` beside the targets."""
        return {}

    def state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        return {}, {}

    def load_state(self, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
        pass

    def fast_settings(self) -> dict[str, Any]:
        """The game's own speed settings in effect, for ``Engine.fast_settings``."""
        return {}

    def summarize(self, record: dict[str, Any]) -> dict[str, Any]:
        return record

    def watch(self, record: dict[str, Any], engine) -> None:
        pass

    def check(self) -> None:
        """Refuse a declaration that cannot train: unknown players or groups, a player in two groups."""
        seen: dict[str, str] = {}
        for group in self.groups:
            for name in group.players:
                try:
                    module_of(self.players, name)
                except (KeyError, AttributeError):
                    raise GankitError(f"game {type(self).__name__}: group {group.name!r} names player {name!r}; "
                                      f"the players are {sorted(self.players)}") from None
                if group.ema and "." in name:
                    raise GankitError(f"game {type(self).__name__}: group {group.name!r} keeps a moving average of "
                                      f"{name!r}, a part of a player; expected whole players")
                overlap = next((other for other in seen if other == name or name.startswith(other + ".")
                                or other.startswith(name + ".")), None)
                if overlap is not None:
                    raise GankitError(f"game {type(self).__name__}: player {name!r} is in groups "
                                      f"{seen[overlap]!r} and {group.name!r}; expected one group per player")
                seen[name] = group.name
        names = [g.name for g in self.groups]
        for phase in self.phases:
            if phase.group not in names:
                raise GankitError(f"game {type(self).__name__}: a phase updates group {phase.group!r}; the groups "
                                  f"are {names}")
            if phase.repeat < 1 or phase.every < 1:
                raise GankitError(f"game {type(self).__name__}: phase of group {phase.group!r} has repeat = "
                                  f"{phase.repeat}, every = {phase.every}; expected both >= 1")
