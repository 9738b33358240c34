"""An interactive explorer of group recommendations, built with ipywidgets (``06_group_aggregation``).

Choose a dataset, pick a real group or compose one from user ids, choose a strategy (any static
rule of :data:`grouprec.aggregation.RULES`, or the attention model), and see the top-K list,
each member's satisfaction with it, and, for attention, each member's weight per listed item.

The widgets only set arguments: everything the explorer shows is computed by pure methods
(:meth:`GroupExplorer.recommend`, :meth:`GroupExplorer.satisfaction`) that take plain values,
and the last result is kept in :attr:`GroupExplorer.current_result`, so the logic is tested by
setting widget values and reading the result.

**Candidates.** A list is drawn from the items that neither the group (for a real group) nor
any of its members interacted with in training: recommending what they already have would be
no help.

**Member satisfaction.** The judge is the user-level model: member u's scores over the
candidates are min-max scaled to :math:`\\rho_{uj} \\in [0, 1]` (their favourite candidate 1,
their least favourite 0), and the satisfaction of u with a list L of K items is the share of the
best list u could have had,

.. math:: \\mathrm{sat}_u(L) = \\frac{\\sum_{j \\in L} \\rho_{uj}}
   {\\max_{|L'| = K} \\sum_{j \\in L'} \\rho_{uj}} \\in [0, 1],

the denominator being the sum over u's own top K. It is 1 when the list is as good for u as u's
own top K, whatever the strategy, so strategies can be compared member by member. (It judges by
the model's predictions; chapter 02's member NDCG judges by held-out items instead, which is the
right yardstick for evaluation but is zero for almost every single list.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from grouprec.aggregation import LIST_RULES, RULES, AGREERecommender, RuleRecommender
from grouprec.data import GroupDataset

__all__ = ["ATTENTION", "ExplorerResult", "GroupExplorer", "parse_members"]

#: The strategy name of the attention model in the strategy menu.
ATTENTION = "attention"

#: Thresholds (on the min-max scale of member scores) used by the two threshold rules unless
#: ``rule_params`` says otherwise.
DEFAULT_RULE_PARAMS: dict[str, dict[str, Any]] = {
    "approval": {"threshold": 0.8},
    "average_without_misery": {"threshold": 0.3},
}


def parse_members(text: str, n_users: int) -> np.ndarray:
    """User ids from text such as ``"3, 17 42"``: distinct, in the order given.

    Raises
    ------
    ValueError
        Naming the offending token, or saying that no id was given.
    """
    tokens = [t for t in re.split(r"[\s,;]+", text.strip()) if t]
    if not tokens:
        raise ValueError("members: type at least one user id, e.g. '3, 17, 42'")
    ids: list[int] = []
    for t in tokens:
        if not re.fullmatch(r"\d+", t):
            raise ValueError(f"members: {t!r} is not a user id (a non-negative integer)")
        u = int(t)
        if u >= n_users:
            raise ValueError(f"members: user {u} does not exist (ids run from 0 to {n_users - 1})")
        if u not in ids:
            ids.append(u)
    return np.array(ids, dtype=np.int64)


@dataclass(frozen=True)
class ExplorerResult:
    """What the explorer shows for one choice of dataset, members, strategy and K.

    Attributes
    ----------
    dataset : str
        Dataset name.
    group : int or None
        The real group's id, None for a composed group.
    members : np.ndarray
        Member user ids, shape (n,).
    strategy : str
        A rule name or ``"attention"``.
    k : int
        List length.
    table : pd.DataFrame
        The list: ``rank``, ``item``, ``group score``, item attributes when the dataset has
        them, ``held out`` (a real group's validation or test item), then one column per member
        (``u<id>``) with the member's scaled score :math:`\\rho_{uj}`.
    satisfaction : pd.Series
        :math:`\\mathrm{sat}_u` per member, indexed by ``u<id>``.
    attention : pd.DataFrame or None
        For the attention model, each listed item's member weights (rows: items, columns:
        members); None for a rule.
    say : pd.Series or None
        For a rule, whether each member took part in the aggregation (see
        :class:`grouprec.aggregation.RuleRecommender`); None for attention.
    """

    dataset: str
    group: int | None
    members: np.ndarray
    strategy: str
    k: int
    table: pd.DataFrame
    satisfaction: pd.Series
    attention: pd.DataFrame | None
    say: pd.Series | None


class _CachedScores:
    """A user-level recommender's full score rows, computed once per user on first use."""

    def __init__(self, base: Any, n_items: int) -> None:
        self.base = base
        self.n_items = n_items
        self.rows: dict[int, np.ndarray] = {}

    def fit(self, dataset: GroupDataset, task: str) -> _CachedScores:
        raise RuntimeError("the explorer uses fitted models; fit them before passing them in")

    def full(self, users: np.ndarray) -> np.ndarray:
        """Scores of every item, shape (len(users), n_items)."""
        missing = [int(u) for u in dict.fromkeys(users.tolist()) if int(u) not in self.rows]
        if missing:
            everything = np.broadcast_to(np.arange(self.n_items), (len(missing), self.n_items))
            scores = np.asarray(self.base.score(np.array(missing), everything), dtype=np.float64)
            self.rows.update(zip(missing, scores, strict=True))
        return np.stack([self.rows[int(u)] for u in users])

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores (n, c) of items (n, c) for users (n,), read from the cached rows."""
        users = np.asarray(users, dtype=np.int64)
        return np.take_along_axis(self.full(users), np.asarray(items, dtype=np.int64), axis=1)


class GroupExplorer:
    """Explore group recommendations interactively: datasets, groups, strategies, K.

    Parameters
    ----------
    datasets : mapping of str to GroupDataset
        The datasets to choose from, by name.
    models : mapping of str to Recommender, or callable
        For each dataset name, a user-level recommender already fitted on that dataset (task
        ``"user"``); or a callable ``models(name, dataset)`` returning one, called the first
        time a dataset is shown. Its scores feed every rule and judge member satisfaction.
    attention_model : mapping of str to AGREERecommender, or AGREERecommender, optional
        Fitted attention models by dataset name; a single model is used for the dataset it was
        fitted on. The strategy ``"attention"`` is offered where one exists.
    k : int
        The initial list length.
    rule_params : mapping of str to dict, optional
        Extra parameters of rules by name, e.g. ``{"approval": {"threshold": 0.9}}``; the list
        rules get ``k`` from the slider.

    Attributes
    ----------
    dataset, mode, group, members, strategy, k_slider : ipywidgets
        The controls. ``mode`` is ``"real group"`` or ``"compose"``; ``members`` is a text of
        user ids, read in compose mode.
    out : ipywidgets.Output
        Where the table and the figure are drawn, once the explorer has been displayed (make
        it the last expression of a cell, or call ``display(explorer)``). Until then the
        results are computed but not drawn, so a script or a test can drive the widgets
        without producing output.
    widget : ipywidgets.VBox
        All controls and the output area.
    current_result : ExplorerResult or None
        The result for the current widget values (None after an input error).
    current_error : str or None
        The message of the last input error, shown under the controls.
    """

    def __init__(
        self,
        datasets: Mapping[str, GroupDataset],
        models: Mapping[str, Any] | Callable[[str, GroupDataset], Any],
        attention_model: Mapping[str, AGREERecommender] | AGREERecommender | None = None,
        k: int = 10,
        rule_params: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        if not datasets:
            raise ValueError("datasets is empty: pass at least one GroupDataset by name")
        self.datasets = dict(datasets)
        if not callable(models):
            missing = sorted(set(self.datasets) - set(models))
            if missing:
                raise ValueError(f"models has no user-level recommender for dataset(s) {missing}")
        self._models = models
        if isinstance(attention_model, AGREERecommender):
            name = getattr(attention_model, "dataset_name_", None)
            if name is None:
                raise ValueError("attention_model is not fitted; call fit(dataset, 'group')")
            attention_model = {name: attention_model}
        self.attention_models = dict(attention_model or {})
        for name, model in self.attention_models.items():
            if name not in self.datasets:
                raise ValueError(f"attention_model names dataset {name!r}, not among the datasets")
            if getattr(model, "task_", None) != "group":
                raise ValueError(f"the attention model for {name!r} must be fitted on 'group'")
        self.rule_params = {
            **DEFAULT_RULE_PARAMS,
            **{r: dict(p) for r, p in (rule_params or {}).items()},
        }
        unknown = sorted(set(self.rule_params) - set(RULES))
        if unknown:
            raise ValueError(f"rule_params names unknown rules {unknown}; rules: {sorted(RULES)}")
        self._scores: dict[str, _CachedScores] = {}
        self._rules: dict[tuple[str, str, int], RuleRecommender] = {}
        self._seen: dict[str, list[np.ndarray]] = {}
        self.current_result: ExplorerResult | None = None
        self.current_error: str | None = None

        first = next(iter(self.datasets))
        self.dataset = widgets.Dropdown(
            options=list(self.datasets), value=first, description="Dataset"
        )
        self.mode = widgets.ToggleButtons(options=["real group", "compose"], value="real group")
        self.group = widgets.Dropdown(description="Group")
        self.members = widgets.Text(description="Members", placeholder="user ids, e.g. 3, 17, 42")
        self.strategy = widgets.Dropdown(description="Strategy")
        self.k_slider = widgets.IntSlider(value=int(k), min=1, max=20, description="K")
        self.status = widgets.HTML()
        self.out = widgets.Output()
        self._updating = False
        self._shown = False  # nothing is drawn before the app is displayed
        self._fill_dataset_controls()
        for control in (self.mode, self.group, self.members, self.strategy, self.k_slider):
            control.observe(self._on_change, names="value")
        self.dataset.observe(self._on_dataset, names="value")
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.dataset, self.mode]),
                widgets.HBox([self.group, self.members]),
                widgets.HBox([self.strategy, self.k_slider]),
                self.status,
                self.out,
            ]
        )
        self.update()

    # -- pure logic ----------------------------------------------------------------------
    def strategies(self, name: str) -> list[str]:
        """The strategies offered for a dataset: every rule, and attention where available."""
        return list(RULES) + ([ATTENTION] if name in self.attention_models else [])

    def model(self, name: str) -> _CachedScores:
        """The (cached) user-level scores of dataset ``name``."""
        if name not in self._scores:
            ds = self.datasets[name]
            base = self._models(name, ds) if callable(self._models) else self._models[name]
            self._scores[name] = _CachedScores(base, ds.n_items)
        return self._scores[name]

    def candidates(self, name: str, members: np.ndarray, group: int | None = None) -> np.ndarray:
        """Items that neither the group nor any member interacted with in training, (c,)."""
        ds = self.datasets[name]
        if name not in self._seen:
            self._seen[name] = [
                ds.train_matrix("user").tolil().rows,
                ds.train_matrix("group").tolil().rows,
            ]
        users, groups = self._seen[name]
        seen = np.zeros(ds.n_items, dtype=bool)
        for u in members:
            seen[users[int(u)]] = True
        if group is not None:
            seen[groups[int(group)]] = True
        return np.flatnonzero(~seen)

    def _rule(self, name: str, strategy: str, k: int) -> RuleRecommender:
        key = (name, strategy, k if strategy in LIST_RULES else 0)
        if key not in self._rules:
            params = dict(self.rule_params.get(strategy, {}))
            if strategy in LIST_RULES:
                params["k"] = k
            rec = RuleRecommender(self.model(name), strategy, fit_base=False, **params)
            self._rules[key] = rec.fit(self.datasets[name], "group")
        return self._rules[key]

    def satisfaction(self, rho: np.ndarray, listed: np.ndarray) -> np.ndarray:
        """:math:`\\mathrm{sat}_u` per member from scaled scores ``rho`` (n, c) and a list (K,).

        ``listed`` holds column positions into ``rho``; see the module docstring.
        """
        K = len(listed)
        best = -np.sort(-rho, axis=1)[:, :K].sum(axis=1)  # (n,) each member's own top K
        got = rho[:, listed].sum(axis=1)  # (n,)
        return np.where(best > 0, got / np.where(best > 0, best, 1.0), 1.0)

    def recommend(
        self,
        name: str,
        members: Sequence[int] | np.ndarray,
        strategy: str,
        k: int,
        group: int | None = None,
    ) -> ExplorerResult:
        """The top-``k`` list for ``members`` under ``strategy``, with what the explorer shows.

        Parameters
        ----------
        name : str
            Dataset name.
        members : sequence of int
            Member user ids (a real group's, or any).
        strategy : str
            A key of :data:`grouprec.aggregation.RULES`, or ``"attention"``.
        k : int
            List length.
        group : int, optional
            The real group's id: its training items are excluded, its held-out items marked,
            and the attention model adds its group embedding.
        """
        if name not in self.datasets:
            raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(self.datasets)}")
        if strategy not in self.strategies(name):
            raise ValueError(
                f"strategy {strategy!r} is not available for {name!r}; "
                f"choose one of {self.strategies(name)}"
            )
        ds = self.datasets[name]
        members = np.asarray(members, dtype=np.int64)
        cand = self.candidates(name, members, group)  # (c,)
        if not 1 <= int(k) <= len(cand):
            raise ValueError(f"k must lie between 1 and the {len(cand)} candidates, got {k!r}")
        k = int(k)
        base_scores = self.model(name).full(members)[:, cand]  # (n, c)
        lo = base_scores.min(axis=1, keepdims=True)
        span = base_scores.max(axis=1, keepdims=True) - lo
        rho = np.where(span > 0, (base_scores - lo) / np.where(span > 0, span, 1.0), 1.0)  # (n, c)
        say = attention = None
        if strategy == ATTENTION:
            R, alpha = self.attention_models[name].score_members(members, cand, group=group)
        else:
            R, _, say_arr = self._rule(name, strategy, k).score_members(members, cand, group=group)
        # Best first; equal group scores in candidate order (item id), as top_k does.
        listed = np.argsort(-np.asarray(R, dtype=np.float64), kind="stable")[:k]  # (k,)
        labels = [f"u{u}" for u in members]
        items = cand[listed]
        table = pd.DataFrame({"rank": np.arange(1, k + 1), "item": items, "group score": R[listed]})
        if ds.item_features is not None:
            features = ds.item_features.set_index("item").reindex(items)
            for column in ("category", "price", "description"):
                if column in features:
                    table[column] = features[column].to_numpy()
        if group is not None:
            held = {}
            for split in ("val", "test"):
                cases = getattr(ds, f"group_{split}")
                if cases is not None:
                    for i in cases.item[cases.entity == group]:
                        held.setdefault(int(i), split)
            table["held out"] = [held.get(int(i), "") for i in items]
        for label, row in zip(labels, rho, strict=True):
            table[label] = row[listed]
        sat = pd.Series(self.satisfaction(rho, listed), index=labels, name="satisfaction")
        if strategy == ATTENTION:
            attention = pd.DataFrame(
                alpha[listed], index=pd.Index(items, name="item"), columns=labels
            )
        else:
            say = pd.Series(say_arr, index=labels, name="has a say")
        return ExplorerResult(name, group, members, strategy, k, table, sat, attention, say)

    # -- widgets -------------------------------------------------------------------------
    def _fill_dataset_controls(self) -> None:
        """Set the group list and the strategies for the chosen dataset."""
        self._updating = True
        try:
            name = self.dataset.value
            ds = self.datasets[name]
            sizes = ds.group_sizes
            self.group.options = [(f"{g} ({sizes[g]} members)", g) for g in range(ds.n_groups)]
            self.group.value = 0
            self.members.value = ", ".join(str(u) for u in ds.members(0))
            previous = self.strategy.value
            self.strategy.options = self.strategies(name)
            self.strategy.value = previous if previous in self.strategy.options else "average"
        finally:
            self._updating = False

    def _on_dataset(self, change: dict) -> None:
        self._fill_dataset_controls()
        self.update()

    def _on_change(self, change: dict) -> None:
        if change["owner"] is self.group and not self._updating:
            # Picking a real group also fills the members box, ready to be edited.
            self._updating = True
            self.members.value = ", ".join(
                str(u) for u in self.datasets[self.dataset.value].members(self.group.value)
            )
            self._updating = False
        if not self._updating:
            self.update()

    def update(self) -> ExplorerResult | None:
        """Recompute :attr:`current_result` from the widget values and redraw."""
        name = self.dataset.value
        ds = self.datasets[name]
        self.group.disabled = self.mode.value != "real group"
        self.members.disabled = self.mode.value == "real group"
        try:
            if self.mode.value == "real group":
                group = int(self.group.value)
                members = ds.members(group)
            else:
                group = None
                members = parse_members(self.members.value, ds.n_users)
            self.current_result = self.recommend(
                name, members, self.strategy.value, self.k_slider.value, group
            )
            self.current_error = None
            self.status.value = ""
        except ValueError as error:
            self.current_result = None
            self.current_error = str(error)
            self.status.value = f"<span style='color:#b00'>{self.current_error}</span>"
        if self._shown:
            self.render()
        return self.current_result

    def figure(self, result: ExplorerResult) -> plt.Figure:
        """Member satisfaction (bars) and, beside it, the attention weights or scaled scores."""
        fig, (ax1, ax2) = plt.subplots(
            1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [1, 2]}
        )
        sat = result.satisfaction
        colours = ["C0" if result.say is None or result.say[u] else "0.7" for u in sat.index]
        ax1.bar(sat.index, sat.to_numpy(), color=colours)
        ax1.set(ylim=(0, 1.05), ylabel="satisfaction (share of own best)", title="Members")
        ax1.tick_params(axis="x", rotation=90 if len(sat) > 6 else 0)
        ranks = [str(r) for r in result.table["rank"]]
        if result.attention is not None:
            bottom = np.zeros(len(ranks))
            for j, u in enumerate(result.attention.columns):
                w = result.attention[u].to_numpy()
                ax2.bar(ranks, w, bottom=bottom, label=u, color=f"C{j % 10}")
                bottom += w
            ax2.set(ylim=(0, 1), xlabel="rank in the list", ylabel="member weight α")
            ax2.set_title("Attention: each listed item's member weights")
            if len(result.attention.columns) <= 10:
                ax2.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        else:
            rho = result.table[list(sat.index)].to_numpy().T  # (members, K)
            im = ax2.imshow(rho, aspect="auto", cmap="viridis", vmin=0, vmax=1)
            ax2.set_xticks(range(len(ranks)), ranks)
            ax2.set_yticks(range(len(sat)), list(sat.index), fontsize=7 if len(sat) > 10 else 9)
            ax2.set(xlabel="rank in the list", title=f"{result.strategy}: members' scaled scores ρ")
            fig.colorbar(im, ax=ax2, fraction=0.04)
        fig.tight_layout()
        return fig

    def render(self) -> None:
        """Draw the current result (or the error) into :attr:`out`."""
        with self.out:
            self.out.clear_output(wait=True)
            result = self.current_result
            if result is None:
                return
            shown = result.table.copy()
            if "description" in shown:
                shown["description"] = shown["description"].str.slice(0, 40)
            display(shown.round(3).set_index("rank"))
            fig = self.figure(result)
            display(fig)
            plt.close(fig)

    def _ipython_display_(self) -> None:
        """Show the app: the controls, and from now on the drawing of every result."""
        self._shown = True
        self.render()
        display(self.widget)
