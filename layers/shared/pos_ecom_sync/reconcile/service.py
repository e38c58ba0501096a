"""The reconciler: pages both vendors, compares with the sync state (`reconcile.rules`), queues what drifted.

One connection at a time, one page at a time, in phases: catalog (POS products by version), products (eCom products
by `since_id`: content edited in eCom), variants (eCom variants by `since_id`: stock, content edited and variants
deleted in eCom), orders (eCom orders updated in the lookback window).

Cost of one full run, list pages only (no per-product read): POS ceil(rows / 200); eCom ceil(products / 250) +
ceil(variants / 250) + order pages (+1 empty page ending each walk). 70,000 variants in families of 4: 71 + 281 + a
few order pages, about 3% of eCom's 12,000 calls a day.
After each page its findings are queued and only then is the checkpoint moved (conditionally), so a run stopped
anywhere (time, throttling, a full queue, a crash) resumes where it stopped and never skips a page.

Poison rows: a row of a page that cannot be compared or turned into a message (no or a garbled id or version, a
value a rule or serialising chokes on) is skipped and parked for the operator (`state.parked_store`, feed
`reconcile:<phase>`), and the phase goes on; one connection's failure never stops the others'.

Priority: the vendor clients come from the same factories as the workers, with the catalog's reserve share, so
reconciliation never takes the share of a rate window that stock and orders rely on. A throttled page stops the
connection's run for this invocation (the next tick resumes), instead of waiting for a slot.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

from pos_ecom_sync.errors import Conflict, RateLimited, SyncError, safe_text
from pos_ecom_sync.intake.poller import OrderPageLike, ParkedRows
from pos_ecom_sync.intake.rows import message_problem, positive_id
from pos_ecom_sync.models.catalog import CatalogState, FamilyRow
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.feeds import ChangePage, SkippedRow, VendorRow
from pos_ecom_sync.models.links import VariantLink
from pos_ecom_sync.models.messages import Concern
from pos_ecom_sync.models.reconcile import ReconcileCheckpoint
from pos_ecom_sync.models.stock import VariantStockState
from pos_ecom_sync.queues import Outgoing
from pos_ecom_sync.reconcile.rules import (
    DRIFT_KINDS,
    Drift,
    advance,
    catalog_drift,
    count_by_kind,
    gone_variants,
    next_due,
    order_drift,
    product_content_drift,
    run_step,
    start_run,
    stock_drift,
    variant_content_drift,
)

JsonObject = dict[str, Any]
Row = Mapping[str, Any]


class PosCatalogFeed(Protocol):
    """Every POS product row, deleted ones included, in stamp order: the catalog compare's side of the POS, as the
    connection's profile reads it (e.g. `profiles.xseries.catalog_walk.XSeriesCatalogWalk`)."""

    @property
    def calls(self) -> int: ...
    def catalog_page(self, cursor: str | None, page_size: int) -> ChangePage:
        """The page after `cursor` (None: the first); an empty page ends the walk."""
        ...

    def family_row(self, row: VendorRow) -> FamilyRow:
        """What the compare reads of a row; raises (a SyncError with the reason) when the row cannot be read."""
        ...

    def row_name(self, row: VendorRow) -> tuple[Any, Any]:
        """The id and version a row is parked under when it cannot be read."""
        ...


class EcomReader(Protocol):
    @property
    def calls(self) -> int: ...
    def list_variants_since(self, since_id: int | None, limit: int = 250) -> list[JsonObject]: ...
    def list_products_since(self, since_id: int | None, limit: int = 250) -> list[JsonObject]: ...
    def list_orders(
        self, updated_at_min: datetime | None, since_id: int | None = None, limit: int = 250
    ) -> OrderPageLike: ...


class ReconcileStateStore(Protocol):
    def get_checkpoint(self, connection_id: str) -> ReconcileCheckpoint: ...
    def save_checkpoint(self, connection_id: str, loaded_revision: int, checkpoint: ReconcileCheckpoint) -> None: ...
    def catalog_states(self, connection_id: str, family_keys: Sequence[str]) -> Mapping[str, CatalogState]: ...
    def stock_states(self, connection_id: str, pos_product_ids: Sequence[str]) -> Mapping[str, VariantStockState]: ...
    def order_statuses(self, connection_id: str, order_ids: Sequence[int]) -> Mapping[int, str]: ...
    def ecom_links(self, connection_id: str) -> Mapping[int, VariantLink]: ...


class Publisher(Protocol):
    def publish(self, outgoing: Sequence[Outgoing]) -> int: ...
    def backlog(self, concern: Concern) -> int: ...


@dataclass
class ReconcileReport:
    """What one invocation did for one connection."""

    connection_id: str
    step: str = "idle"  # "start", "continue" or "idle"
    run_id: str | None = None
    phase: str = "done"  # where the run stands when this invocation stopped
    cursor: str | None = None
    pages: dict[str, int] = field(default_factory=dict)  # read in this invocation, per phase
    drift: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DRIFT_KINDS, 0))
    queued: int = 0
    pos_calls: int = 0
    ecom_calls: int = 0
    completed: bool = False  # the run finished in this invocation
    run_drift: dict[str, int] = field(default_factory=dict)  # the whole run's findings so far
    run_pages: dict[str, int] = field(default_factory=dict)  # the whole run's pages so far, per phase
    stopped: str | None = None  # why this invocation stopped before the run finished
    next_due: datetime | None = None
    skipped: list[SkippedRow] = field(default_factory=list)  # rows of its pages that could not be handled (parked)

    @property
    def found(self) -> int:
        return sum(self.drift.values())

    def drift_report(self) -> dict[str, Any]:
        """The drift report of this connection's run: what this invocation found per kind (every kind, zeros
        included), the whole run's findings and pages so far, and whether the run completed."""
        return {
            "run_id": self.run_id,
            "completed": self.completed,
            "found": {kind: self.drift.get(kind, 0) for kind in DRIFT_KINDS},
            "run_found": {kind: self.run_drift.get(kind, 0) for kind in DRIFT_KINDS},
            "run_pages": self.run_pages,
            "queued": self.queued,
            "pos_calls": self.pos_calls,
            "ecom_calls": self.ecom_calls,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "run_id": self.run_id,
            "phase": self.phase,
            "cursor": self.cursor,
            "pages": self.pages,
            "drift": self.drift,
            "queued": self.queued,
            "pos_calls": self.pos_calls,
            "ecom_calls": self.ecom_calls,
            "completed": self.completed,
            "run_drift": self.run_drift,
            "run_pages": self.run_pages,
            "stopped": self.stopped,
            "next_due": self.next_due.isoformat() if self.next_due else None,
            "skipped": len(self.skipped),
        }


@dataclass(frozen=True)
class PageOutcome:
    found: list[Drift]
    cursor: str | None
    finished: bool
    skipped: list[SkippedRow] = field(default_factory=list)


def _feed(phase: str) -> str:
    return f"reconcile:{phase}"


def _judged(phase: str, rule: Callable[[Sequence[Row]], list[Drift]], rows: Sequence[Row]) -> PageOutcome:
    """`rule` over a page's rows; when it raises, row by row, so the rows it cannot judge are skipped (with the
    reason) and the others still count. Cursor and `finished` are the caller's: the outcome carries findings only."""
    try:
        return PageOutcome(rule(rows), None, finished=False)
    except Exception:  # a row nobody foresaw: find it below, never fail the page for it
        found: list[Drift] = []
        skipped: list[SkippedRow] = []
        for row in rows:
            try:
                found.extend(rule([row]))
            except Exception as exc:  # this row alone
                reason = f"cannot be compared ({type(exc).__name__})"
                skipped.append(SkippedRow.of(_feed(phase), row.get("id"), reason, row.get("version")))
        return PageOutcome(found, None, finished=False, skipped=skipped)


def _with_ids(
    phase: str, rows: Sequence[Row], read_id: Callable[[Row], Any]
) -> tuple[list[Row], list[Any], list[SkippedRow]]:
    """The rows whose id (and, for the POS, version) can be read, their ids, and the others skipped."""
    kept: list[Row] = []
    ids: list[Any] = []
    skipped: list[SkippedRow] = []
    for row in rows:
        try:
            ids.append(read_id(row))
        except SyncError as exc:
            skipped.append(SkippedRow.of(_feed(phase), row.get("id"), exc.message, row.get("version")))
            continue
        kept.append(row)
    return kept, ids, skipped


class _Stop(Exception):
    """Ends an invocation's reading early (control flow inside the reconciler, never raised out of it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Reconciler:
    def __init__(
        self,
        store: ReconcileStateStore,
        publisher: Publisher,
        *,
        interval: timedelta = timedelta(hours=24),
        order_lookback: timedelta = timedelta(hours=48),
        max_backlog: int | None = None,
        pos_page_size: int = 200,
        ecom_page_size: int = 250,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_run_id: Callable[[], str] = lambda: uuid.uuid4().hex[:12],
        parked: ParkedRows | None = None,
        observer: Callable[[Drift], None] | None = None,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._interval = interval
        self._order_lookback = order_lookback
        # Like the poller: findings are queued only while the concern's queue holds fewer than this, so a large
        # drift (e.g. after an outage) is fed to the workers as fast as they drain, never as a flood.
        self._max_backlog = max_backlog
        self._pos_page_size = pos_page_size
        self._ecom_page_size = ecom_page_size
        self._clock = clock
        self._new_run_id = new_run_id
        self._parked = parked
        self._observer = observer  # sees each finding as it is queued (the dry run lists them)

    def reconcile(
        self,
        connection: Connection,
        pos: PosCatalogFeed,
        ecom: EcomReader,
        has_time: Callable[[], bool] = lambda: True,
        *,
        force: bool = False,
    ) -> ReconcileReport:
        cid = connection.connection_id
        report = ReconcileReport(cid)
        pos_before, ecom_before = pos.calls, ecom.calls
        loaded = self._store.get_checkpoint(cid)
        now = self._clock()
        report.step = run_step(loaded, now, self._interval, connection.created_at, force=force)
        if report.step == "idle":
            report.next_due = next_due(loaded, self._interval, connection.created_at)
            report.run_drift = loaded.drift
            return report
        checkpoint = loaded
        if report.step == "start":
            checkpoint = start_run(loaded, self._new_run_id(), now, self._order_lookback, connection.created_at)
            try:
                self._store.save_checkpoint(cid, loaded.revision, checkpoint)
            except Conflict:
                report.stopped = "another invocation moved this connection's reconciliation"
                return report
        walk = _Walk(connection, pos, ecom, self._store)
        try:
            while checkpoint.in_progress:
                if not has_time():
                    raise _Stop("out of time: the next tick resumes from the checkpoint")
                checkpoint = self._one_page(walk, checkpoint, report)
        except _Stop as stop:
            report.stopped = stop.reason
        except RateLimited as exc:
            report.stopped = f"throttled ({exc.message}): the next tick resumes from the checkpoint"
        finally:
            report.run_id, report.phase, report.cursor = checkpoint.run_id, checkpoint.phase, checkpoint.cursor
            report.run_drift, report.run_pages = checkpoint.drift, checkpoint.pages
            report.pos_calls, report.ecom_calls = pos.calls - pos_before, ecom.calls - ecom_before
        report.completed = checkpoint.phase == "done"
        if report.completed:
            report.next_due = next_due(checkpoint, self._interval, connection.created_at)
        return report

    def _one_page(self, walk: _Walk, checkpoint: ReconcileCheckpoint, report: ReconcileReport) -> ReconcileCheckpoint:
        """Read one page of the current phase, queue its findings, then move the checkpoint past it."""
        phase = checkpoint.phase
        if phase == "catalog":
            self._check_backlog("products")
            outcome = walk.catalog_page(checkpoint.cursor, self._pos_page_size)
        elif phase == "products":
            self._check_backlog("products")
            outcome = walk.products_page(checkpoint.cursor, self._ecom_page_size)
        elif phase == "variants":
            self._check_backlog("stock")
            self._check_backlog("products")
            outcome = walk.variants_page(checkpoint.cursor, self._ecom_page_size)
        else:
            outcome = walk.orders_page(checkpoint, self._ecom_page_size)
        run_id = checkpoint.run_id or ""
        now = self._clock()
        outgoing: list[Outgoing] = []
        found: list[Drift] = []
        skipped = list(outcome.skipped)
        for drift in outcome.found:
            message, key = drift.message(walk.cid, now), drift.delivery_key(run_id)
            problem = message_problem(message, key)
            if problem is None:
                outgoing.append(Outgoing(message, key))
                found.append(drift)
                if self._observer is not None:
                    self._observer(drift)
            else:
                skipped.append(SkippedRow.of(_feed(phase), drift.entity_id, problem, drift.version))
        # Parked before the checkpoint passes them (an invocation dying in between parks them again: same items).
        if skipped and self._parked is not None:
            self._parked.park(walk.cid, skipped)
        report.skipped.extend(skipped)
        if outgoing:
            self._publisher.publish(outgoing)
        moved = advance(checkpoint, self._clock(), cursor=outcome.cursor, phase_finished=outcome.finished, found=found)
        try:
            self._store.save_checkpoint(walk.cid, checkpoint.revision, moved)
        except Conflict as exc:
            raise _Stop("another invocation advanced this run") from exc
        report.pages[phase] = report.pages.get(phase, 0) + 1
        report.queued += len(found)
        for kind, n in count_by_kind(found).items():
            report.drift[kind] += n
        return moved

    def _check_backlog(self, concern: Concern) -> None:
        if self._max_backlog is not None and self._publisher.backlog(concern) >= self._max_backlog:
            raise _Stop(f"{concern} queue is full: resumes from the checkpoint as it drains")


class _Walk:
    """The reads of one invocation for one connection (links are loaded once, on the first variants page)."""

    def __init__(
        self, connection: Connection, pos: PosCatalogFeed, ecom: EcomReader, store: ReconcileStateStore
    ) -> None:
        self.connection = connection
        self.cid = connection.connection_id
        self.pos = pos
        self.ecom = ecom
        self.store = store
        self._links: Mapping[int, VariantLink] | None = None
        self._linked_ids: list[int] = []
        self._product_families: dict[int, str] = {}

    def catalog_page(self, cursor: str | None, page_size: int) -> PageOutcome:
        page = self.pos.catalog_page(cursor, page_size)
        # Only an empty page ends the walk: a short one may just be a server-side page cap below `page_size`.
        if not page.rows or page.cursor is None:
            return PageOutcome([], cursor, finished=True)
        rows: list[FamilyRow] = []
        skipped: list[SkippedRow] = []
        for row in page.rows:
            try:
                read = self.pos.family_row(row)
            except SyncError as exc:
                row_id, version = self.pos.row_name(row)
                skipped.append(SkippedRow.of(_feed("catalog"), row_id, exc.message, version))
                continue
            # The connection's shipping product is a POS sale line for imported orders, never sold online.
            if read.item_id != self.connection.shipping_product_id:
                rows.append(read)
        states = self.store.catalog_states(self.cid, sorted({row.family_key for row in rows}))
        found = catalog_drift(rows, states)
        return PageOutcome(found, page.cursor, False, skipped)

    def _load_links(self) -> Mapping[int, VariantLink]:
        if self._links is None:
            self._links = self.store.ecom_links(self.cid)
            self._linked_ids = sorted(self._links)
            self._product_families = {link.ecom_product_id: link.family_key for link in self._links.values()}
        return self._links

    def products_page(self, cursor: str | None, page_size: int) -> PageOutcome:
        self._load_links()
        after = int(cursor) if cursor else None
        rows, ids, skipped = _with_ids("products", self.ecom.list_products_since(after, limit=page_size), positive_id)
        if not ids:
            return PageOutcome([], cursor, finished=True, skipped=skipped)
        keys = sorted({self._product_families[i] for i in ids if i in self._product_families})
        states = self.store.catalog_states(self.cid, keys) if keys else {}
        judged = _judged(
            "products", partial(product_content_drift, families=self._product_families, states=states), rows
        )
        return PageOutcome(judged.found, str(max(ids)), False, skipped + judged.skipped)

    def variants_page(self, cursor: str | None, page_size: int) -> PageOutcome:
        links = self._load_links()
        after = int(cursor) if cursor else None
        rows, ids, skipped = _with_ids("variants", self.ecom.list_variants_since(after, limit=page_size), positive_id)
        upto = max(ids) if ids else None
        # An empty page covers every id above the cursor: links there are variants deleted in eCom.
        found = gone_variants(links, self._linked_ids, ids, after, upto)
        linked = [links[i] for i in ids if i in links]
        if linked:
            states = self.store.stock_states(self.cid, [link.pos_product_id for link in linked])
            outlets = self.connection.connected_outlet_ids
            stock = _judged(
                "variants", partial(stock_drift, links=links, states=states, connected_outlets=outlets), rows
            )
            families = self.store.catalog_states(self.cid, sorted({link.family_key for link in linked}))
            content = _judged("variants", partial(variant_content_drift, links=links, states=families), rows)
            found = content.found + stock.found + found
            skipped += [row for row in content.skipped + stock.skipped if row not in skipped]
        if not ids:
            return PageOutcome(found, cursor, finished=True, skipped=skipped)
        return PageOutcome(found, str(upto), finished=False, skipped=skipped)

    def orders_page(self, checkpoint: ReconcileCheckpoint, page_size: int) -> PageOutcome:
        # The cursor is the `since_id` of the next page (eCom caps deep `page` paging); a run checkpointed with an
        # older page-number cursor just re-reads from a low id, which is harmless.
        since_id = int(checkpoint.cursor) if checkpoint.cursor else None
        page = self.ecom.list_orders(checkpoint.orders_since, since_id=since_id, limit=page_size)
        orders, ids, skipped = _with_ids("orders", page.orders, positive_id)
        statuses = self.store.order_statuses(self.cid, ids) if ids else {}
        finished = page.next_since_id is None
        cursor = None if finished else str(page.next_since_id)
        judged = _judged("orders", partial(order_drift, statuses=statuses), orders)
        return PageOutcome(judged.found, cursor, finished, skipped + judged.skipped)


@dataclass
class ReconcileRunSummary:
    reports: list[ReconcileReport] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    # The exception that failed each connection in `failures` (absent for one skipped for time): its type is logged.
    errors: dict[str, Exception] = field(default_factory=dict)

    @property
    def skipped(self) -> list[tuple[str, SkippedRow]]:
        """Every row skipped in this invocation, with its connection."""
        return [(r.connection_id, row) for r in self.reports for row in r.skipped]

    @property
    def drift(self) -> dict[str, int]:
        return {kind: sum(r.drift[kind] for r in self.reports) for kind in DRIFT_KINDS}

    @property
    def pages(self) -> int:
        return sum(sum(r.pages.values()) for r in self.reports)

    @property
    def queued(self) -> int:
        return sum(r.queued for r in self.reports)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queued": self.queued,
            "pages": self.pages,
            "drift": self.drift,
            "connections": {r.connection_id: r.as_dict() for r in self.reports},
            "failures": self.failures,
        }


class ConnectionSource(Protocol):
    def get_connection(self, connection_id: str) -> Connection | None: ...
    def iter_connections(self, *, active_only: bool = False) -> Iterable[Connection]: ...


def connections_to_reconcile(store: ConnectionSource, connection_id: str | None) -> list[Connection]:
    """Every active connection, or only the one an operator named (when it is active)."""
    if connection_id is None:
        return list(store.iter_connections(active_only=True))
    found = store.get_connection(connection_id)
    return [found] if found is not None and found.is_active else []


def reconcile_connections(
    connections: Sequence[Connection],
    reconciler: Reconciler,
    clients_for: Callable[[Connection], tuple[PosCatalogFeed, EcomReader]],
    has_time: Callable[[], bool],
    *,
    force: bool = False,
) -> ReconcileRunSummary:
    """Reconcile each connection in turn; one connection's failure is recorded and never stops the others (its
    checkpoint holds, so the next tick resumes it)."""
    summary = ReconcileRunSummary()
    for connection in connections:
        if not has_time():
            summary.failures[connection.connection_id] = "skipped: out of time (reconciled on the next tick)"
            continue
        try:
            pos, ecom = clients_for(connection)
            summary.reports.append(reconciler.reconcile(connection, pos, ecom, has_time, force=force))
        except SyncError as exc:
            summary.failures[connection.connection_id] = exc.message
            summary.errors[connection.connection_id] = exc
        except Exception as exc:  # a failure nobody foresaw is this connection's alone: the others still run
            summary.failures[connection.connection_id] = f"{type(exc).__name__}: {safe_text(str(exc), 200)}"
            summary.errors[connection.connection_id] = exc
    return summary


# -- dry run ----------------------------------------------------------------------------------------------------


class _PreviewState:
    """The sync state as the dry run sees it: every read passes through, the checkpoint lives in memory only
    (a fresh run from the first phase), so the connection's real reconciliation is never moved."""

    def __init__(self, store: ReconcileStateStore) -> None:
        self._store = store
        self._checkpoint = ReconcileCheckpoint()

    def get_checkpoint(self, connection_id: str) -> ReconcileCheckpoint:
        return self._checkpoint

    def save_checkpoint(self, connection_id: str, loaded_revision: int, checkpoint: ReconcileCheckpoint) -> None:
        self._checkpoint = checkpoint

    def catalog_states(self, connection_id: str, family_keys: Sequence[str]) -> Mapping[str, CatalogState]:
        return self._store.catalog_states(connection_id, family_keys)

    def stock_states(self, connection_id: str, pos_product_ids: Sequence[str]) -> Mapping[str, VariantStockState]:
        return self._store.stock_states(connection_id, pos_product_ids)

    def order_statuses(self, connection_id: str, order_ids: Sequence[int]) -> Mapping[int, str]:
        return self._store.order_statuses(connection_id, order_ids)

    def ecom_links(self, connection_id: str) -> Mapping[int, VariantLink]:
        return self._store.ecom_links(connection_id)


class _Discard:
    """A publisher that queues nothing (and never reports a backlog, so the dry run reads every page)."""

    def publish(self, outgoing: Sequence[Outgoing]) -> int:
        return len(outgoing)

    def backlog(self, concern: Concern) -> int:
        return 0


@dataclass
class DriftPreview:
    """What a full reconciliation would find and queue for repair now, found without writing anything."""

    report: ReconcileReport
    findings: list[Drift]


def preview_drift(
    store: ReconcileStateStore,
    connection: Connection,
    pos: PosCatalogFeed,
    ecom: EcomReader,
    *,
    order_lookback: timedelta = timedelta(hours=48),
    has_time: Callable[[], bool] = lambda: True,
) -> DriftPreview:
    """A whole run of the reconciler over both vendors' lists (`reconcile now --dry-run`): the same pages and rules
    as the real run, but no message queued, no checkpoint moved and no row parked. Rows that could not be compared
    are in `report.skipped`."""
    findings: list[Drift] = []
    reconciler = Reconciler(_PreviewState(store), _Discard(), order_lookback=order_lookback, observer=findings.append)
    report = reconciler.reconcile(connection, pos, ecom, has_time, force=True)
    return DriftPreview(report, findings)
