"""moto, doing what it did for a fraction of the CPU: the tests' and the local stack's AWS is moto, and two of its
hot paths made the large tests CPU-bound in moto rather than in our code.

SQS reads the same clock more cheaply.
moto decides whether each queued message is visible or delayed by reading the time through datetime arithmetic
(`moto.core.utils.unix_time`: now(UTC), naive, minus the epoch), once per message. It does so for every queue count,
and it builds all the counts on every send (it reads `ContentBasedDeduplication` from the whole attribute map,
counts included), so sending n messages to a queue costs n^2 clock reads. One test that polls 1,750 POS rows into
1,000 messages spent 17 million clock reads and most of its 2 minutes there.
- `time.time()` is the same instant (seconds since the epoch); only the call with no argument is replaced, so moto's
  conversions of a given datetime are untouched.
- A count or listing of a queue's messages reads the clock once for the whole scan (one instant instead of a
  slightly later one per message: what a real count means anyway).
- moto's camelCase -> snake_case conversion of attribute names, done for every attribute of every count, is a pure
  function and is cached.
No behaviour changes: visibility, delays and retention read the same clock as before.

DynamoDB casts values more cheaply. Every moto Query sorts the whole table (`Table.all_items`) and compares key
values through `DynamoType.cast_value`, which tries five type tests before it returns a string as itself: a query
on a table of a few thousand items cost millions of them. The fast path returns the same value (a string, binary or
boolean as is, a number as a Decimal) and leaves every other type to moto.

DynamoDB updates cost less. Every vendor call takes a slot from the rate budget with a conditional UpdateItem of
about a dozen clauses, and moto spent most of it parsing the expression (twice), deep-copying the parsed tree
(`copy.deepcopy`, generic and slow on a tree with parent links) and rebuilding each tree walker's table of node types
at every node. The expression text is parsed once (the tree is only ever read or copied), a plain tree is copied
node by node, and each walker's table is built once per walker class: the same trees, validated the same way.
The three walkers that judge only an expression's structure (clause counts, overlapping paths, key attributes) run
once per expression, names and table key.

DynamoDB transactions roll back cheaply. TransactWriteItems deep-copies every table it names before it starts, to
restore it if the transaction is cancelled: each transaction costs the whole table, so a test or benchmark that
fills the table goes quadratic (the order ledger's writes are transactions). Only the items the transaction names
are kept, and put back when it is cancelled: the same outcome. This relies on moto's DynamoDB handling one request
at a time (`dynamodb_atomic`, applied wherever this module is; the benchmarks serialise their calls themselves).

Each request found its handler by listing the handler class's methods (`inspect.getmembers`) again; the list is
kept per class. The moto server also listed moto's package folder (a `stat` per service) to route every request;
that list is kept too.

Clients share botocore's event-name rewrites. Each new client copied its session's event aliaser with an empty
cache, and worked out again which aliases apply to each event it emitted; aliasers with botocore's own table now
share one cache (the rewrite depends only on the name and the table).

Responses are serialised without asking six alias providers per attribute. moto 5 writes each answer by walking
the operation's output shape, and finds every member's value by building six "alias provider" objects and asking
each which names the value may go by, for every member of every structure: a DynamoDB item's attribute values are
structures of ten members each (`S`, `N`, `M`, ...), so reading back an item asked sixty providers per attribute, and
that was the largest single cost of the DynamoDB-heavy tests. The names depend only on the picker, the value's
class, the member's shape, that shape's parent and the member's name (a value with its own `Meta` aliases, or a
picker with response transformers, still goes the slow way), so they are listed once per such combination and
tried in the same order: the same values are picked. A plain dict is looked up with `get` rather than moto's
`obj[key]` in a `try`, which raised and caught a KeyError for each of the nine absent members of every attribute
value.

A condition is parsed once per text and names. A conditional write parsed its ConditionExpression twice (the
handler checks the names it uses, the model evaluates it), and writes repeat their conditions with other values
(every rate budget take); each call evaluates a copy of the parsed tree that holds its own values.

SQS long polls wait instead of spinning. A receive that finds visible messages it may not deliver (a FIFO queue whose
group has a message in flight) waited on "some message is visible", which was already true: it re-scanned the
queue in a tight loop until its wait time ended, a core's worth of CPU for every such poll of the local stack's
event sources. It now looks again every `SQS_RECHECK_S`; a new message still wakes it at once.
"""

from __future__ import annotations

import copy
import datetime
import functools
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import botocore.session as botocore_session
from botocore import hooks as _hooks
from moto import backends as _backends
from moto.core import responses as _responses
from moto.core import serialize as _serialize
from moto.dynamodb import comparisons as _comparisons
from moto.dynamodb import models as _dynamodb_models
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.dynamodb.parsing import ast_nodes as _ast_nodes
from moto.dynamodb.parsing import expressions as _expressions
from moto.dynamodb.parsing import validators as _validators
from moto.sqs import models as sqs_models

_PATCHED = "_sped_up"
# How often a long poll that sees only undeliverable messages looks again (a released group, a visibility timeout).
SQS_RECHECK_S = 0.02
# moto names these functions in the module without exporting them: patched where its SQS models look them up.
models: Any = sqs_models
# moto's expression modules are untyped.
ast_nodes: Any = _ast_nodes
expressions: Any = _expressions
validators: Any = _validators
dynamodb_models: Any = _dynamodb_models
comparisons: Any = _comparisons
responses: Any = _responses
serialize: Any = _serialize
backends: Any = _backends
hooks: Any = _hooks


def speed_up_moto() -> None:
    """Patch moto's SQS clock reads and DynamoDB value casts (idempotent)."""
    if getattr(models, _PATCHED, False):
        return
    _cheap_sqs_clock()
    _cheap_dynamodb_casts()
    _cheap_update_expressions()
    _cheap_condition_expressions()
    _one_botocore_loader()
    _shared_event_alias_names()
    _cheap_transaction_rollback()
    _cheap_value_picking()
    responses.method_names_from_class = functools.cache(responses.method_names_from_class)
    listed = tuple(backends.list_of_moto_modules())  # the installed package's folders: fixed for the process
    backends.list_of_moto_modules = lambda: listed
    setattr(models, _PATCHED, True)


def _cheap_sqs_clock() -> None:
    unix_time, unix_time_millis = models.unix_time, models.unix_time_millis

    def now_seconds(dt: datetime.datetime | None = None) -> float:
        return time.time() if dt is None else unix_time(dt)

    def now_millis(dt: datetime.datetime | None = None) -> float:
        return time.time() * 1000.0 if dt is None else unix_time_millis(dt)

    models.unix_time = now_seconds
    models.unix_time_millis = now_millis
    queue = models.Queue
    # The same tests as `Message.visible` / `Message.delayed`, at one instant for the whole scan.
    queue.messages = property(lambda self: _scan(self, lambda m, now: now > m.visible_at and not now < m.delayed_until))
    queue.approximate_number_of_messages_delayed = property(
        lambda self: len(_scan(self, lambda m, now: now < m.delayed_until))
    )
    queue.approximate_number_of_messages_not_visible = property(
        lambda self: len(_scan(self, lambda m, now: not now > m.visible_at))
    )
    models.camelcase_to_underscores = functools.lru_cache(maxsize=256)(models.camelcase_to_underscores)

    def wait_for_messages(self: Any, timeout: int) -> None:
        with self._messages_lock:
            if self.messages:  # visible, yet the receive could deliver none of them: look again shortly
                self._messages_lock.wait(timeout=min(timeout, SQS_RECHECK_S))
            else:
                self._messages_lock.wait_for(lambda: self.messages, timeout=timeout)

    queue.wait_for_messages = wait_for_messages


_AS_IS = frozenset({"S", "B", "BOOL"})


def _cheap_dynamodb_casts() -> None:
    slow_cast = DynamoType.__dict__["cast_value"].fget
    assert slow_cast is not None

    def cast_value(self: DynamoType) -> Any:
        kind = self.type
        if kind in _AS_IS:
            return self.value
        if kind == "N":
            return Decimal(self.value)
        return slow_cast(self)

    DynamoType.cast_value = property(cast_value)  # type: ignore[assignment,method-assign]


def _cheap_value_picking() -> None:
    """Each member's possible names listed once per picker, value class, shape, parent and name (see above)."""
    slow_get_value = serialize.ResponseSerializer.get_value
    pickers = (serialize.AttributePicker, serialize.XFormedAttributePicker)
    missing, value_of = serialize.MISSING, serialize.get_value
    # (picker class, value class, id(shape), id(parent), member name) -> (shape, parent, names): the shapes are kept,
    # so an id is never reused while its entry stands (moto's service models, and their shapes, live for the process).
    names_of: dict[tuple[Any, ...], tuple[Any, Any, tuple[str, ...]]] = {}

    def get_value(self: Any, value: Any, key: str, shape: Any) -> Any:
        picker = self._value_picker
        if (
            type(picker) not in pickers
            or picker.alias_providers is not serialize.DEFAULT_ALIAS_PROVIDERS
            or picker.response_transformers
            or hasattr(value, "Meta")
        ):
            return slow_get_value(self, value, key, shape)
        parent = getattr(shape, "parent", None)
        slot = (type(picker), type(value), id(shape), id(parent), key)
        known = names_of.get(slot)
        if known is None or known[0] is not shape or known[1] is not parent:
            context = serialize.AttributePickerContext(obj=value, key=key, shape=shape)
            known = names_of[slot] = (shape, parent, tuple(picker.get_possible_keys(context)))
        plain = type(value) is dict  # looked up with `get`: moto's `obj[key]` raises a KeyError per absent member
        for name in known[2]:
            found = value.get(name, missing) if plain and "." not in name else value_of(value, name, missing)
            if found is not missing:
                return found
        return None

    get_value.__wrapped__ = slow_get_value  # type: ignore[attr-defined]  # what it replaced (for its test)
    serialize.ResponseSerializer.get_value = get_value


def _scan(queue: Any, keep: Callable[[Any, float], bool]) -> list[Any]:
    now = time.time() * 1000.0
    return [m for m in queue._messages if keep(m, now)]


def _one_botocore_loader() -> None:
    """One botocore data loader for the process. Every moto mock replaces boto3's default session (so credentials
    are read again), and every new session made its own loader, which reads and parses each service's model, endpoint
    rules and partitions from disk again: a fifth of the tests' CPU went to building clients. The loader caches
    what it parsed, which botocore never changes, so sessions can share it."""
    botocore_session.create_loader = functools.cache(botocore_session.create_loader)


def _shared_event_alias_names() -> None:
    """Every boto3 client copies its session's EventAliaser with an empty cache of the event names it rewrote, so
    each new client worked out again, for every event it emitted, which of botocore's aliases apply to the name:
    the largest single botocore cost in the suite's profile (2.3 % of its CPU; the tests build clients for every
    test, as each test's sandboxes start cold). The rewrite depends only on the name and the alias table, so the
    aliasers that use botocore's own table share one cache; any other table keeps a cache of its own."""
    aliaser = hooks.EventAliaser
    slow_init = aliaser.__init__
    shared: dict[str, str] = {}

    def init(self: Any, event_emitter: Any, event_aliases: Any = None) -> None:
        slow_init(self, event_emitter, event_aliases)
        if self._event_aliases == hooks.EVENT_ALIASES:
            self._alias_name_cache = shared

    aliaser.__init__ = init


def _cheap_update_expressions() -> None:
    """An UpdateItem parses its expression twice and copies the tree before each validation; the tree is then
    walked by ten processors, each of which rebuilt its node-type table at every node."""
    parser = expressions.UpdateExpressionParser
    # A parsed tree is only ever read or copied (`Validator` validates a copy), so one parse per expression text.
    parse: Any = functools.lru_cache(maxsize=512)(parser.make.__func__)
    parser.make = classmethod(parse)
    traverser = ast_nodes.DepthFirstTraverser
    node_types: dict[type, tuple[type, ...]] = {}

    def nodes_to_be_processed(self: Any) -> tuple[type, ...]:
        # The table's keys are classes named in each processor's code: the same for every instance of a class.
        kind = type(self)
        if kind not in node_types:
            node_types[kind] = tuple(self._processing_map())
        return node_types[kind]

    traverser.nodes_to_be_processed = nodes_to_be_processed
    validators.deepcopy = _copy_tree
    _structure_checked_once()


# Expressions whose structure passed validation (the table is emptied when full).
MAX_CHECKED_STRUCTURES = 1024


def _structure_checked_once() -> None:
    """Three of an update's ten validators judge only its structure: at most one clause of each kind (a walk of the
    whole tree from every one of its ~30 nested expression nodes, so quadratic), no overlapping paths, no key
    attribute set. Their verdict depends on the parsed tree (one per text), the names and the table's key, and they
    change nothing; once an expression passed them with those names on that table, they are not run for it again.
    The other seven (values, the item, types) run at every call, as before."""
    validator = validators.UpdateExpressionValidator
    structural = (
        validators.ActionCountValidator,
        validators.OverlappingPathsValidator,
        validators.UpdateHashRangeKeyValidator,
    )
    slow_init, slow_validate = validator.__init__, validator.validate
    passed: dict[tuple[int, str, str], Any] = {}

    def structure(self: Any) -> tuple[int, str, str]:
        return (id(self._expression), repr(self.expression_attribute_names), repr(self.table.table_key_attrs))

    def init(self: Any, expression: Any, *args: Any, **kwargs: Any) -> None:
        self._expression = expression
        slow_init(self, expression, *args, **kwargs)
        if structure(self) in passed:
            self.processors = [p for p in self.processors if not isinstance(p, structural)]

    def validate(self: Any) -> Any:
        validated = slow_validate(self)
        if len(passed) >= MAX_CHECKED_STRUCTURES:
            passed.clear()
        passed[structure(self)] = self._expression  # kept, so that its id names no other tree meanwhile
        return validated

    validator.__init__ = init
    validator.validate = validate


# Parsed conditions kept (the table is emptied when full: a test run repeats a few hundred distinct conditions).
MAX_CONDITIONS = 1024


def _cheap_condition_expressions() -> None:
    """A conditional write parses its condition twice (the handler, to check the names it uses, then the model, to
    evaluate it), and writes repeat their conditions with other values: a rate budget's take says the same thing
    at every call, about another instant. A condition's tree depends only on its text and names, except for the
    values its `:placeholders` stand for, which the parser looks up (a missing one raises) and puts, as they are,
    in the tree's value operands. So one parse per (text, names) is kept, with which operand stands for which
    placeholder; each call gets a copy of that tree holding its own values (a copy: two calls may evaluate at once)."""
    parser = comparisons.ConditionExpressionParser
    slow_parse, slow_make_operand = parser.parse, parser._make_operand
    parsed: dict[tuple[str, str], tuple[Any, list[tuple[Any, str]], list[str], list[str]]] = {}

    def make_operand(self: Any, node: Any) -> Any:
        operand = slow_make_operand(self, node)
        if node.kind == parser.Kind.EXPRESSION_ATTRIBUTE_VALUE and hasattr(self, "_placeholders"):
            self._placeholders.append((operand, node.text))
        return operand

    def parse(self: Any) -> Any:
        key = (self.condition_expression, repr(self.expression_attribute_names))
        known = parsed.get(key)
        values = self.expression_attribute_values
        if known is None:
            self._placeholders = []
            self.expression_attribute_values = copy.deepcopy(values)  # the kept tree holds none of the request's
            try:
                tree = slow_parse(self)  # an invalid condition raises, and is parsed (and refused) again next time
            finally:
                self.expression_attribute_values = values
            if len(parsed) >= MAX_CONDITIONS:
                parsed.clear()
            known = parsed[key] = (
                tree,
                self._placeholders,
                list(self.expr_attr_names_found),
                list(self.expr_attr_values_found),
            )
            del self._placeholders
        tree, placeholders, names_found, values_found = known
        memo: dict[int, Any] = {}
        own = _copy_condition(tree, memo)
        for operand, name in placeholders:
            value = self._lookup_expression_attribute_value(name)  # raises for an undeclared one, as parsing did
            if id(operand) in memo:
                memo[id(operand)].__init__(copy.deepcopy(value))
        self.expr_attr_names_found.extend(names_found)
        self.expr_attr_values_found.extend(values_found)
        return own

    parser._make_operand = make_operand
    parser.parse = parse


_SHARED = (str, int, float, bool, type(None), Decimal)


def _copy_condition(value: Any, memo: dict[int, Any]) -> Any:
    """`copy.deepcopy` for a parsed condition (moto's Op, Func and operand objects, whose state is their attributes:
    operands, tuples and lists of them, strings), about four times cheaper (75 against 283 us for a budget take's
    condition). An object met twice (a function's operand is also one of its arguments) is copied once, as deepcopy
    does (`memo`: id of the original -> its copy). Anything else is copied by `copy.deepcopy`."""
    kind = type(value)
    twin: Any
    if kind in _SHARED:
        return value
    if id(value) in memo:
        return memo[id(value)]
    if kind is tuple:
        return tuple(_copy_condition(v, memo) for v in value)
    if kind is list:
        twin = memo[id(value)] = []
        twin.extend(_copy_condition(v, memo) for v in value)
        return twin
    if kind.__module__ == comparisons.__name__ and not hasattr(kind, "__slots__"):
        twin = memo[id(value)] = object.__new__(kind)
        twin.__dict__ = {k: _copy_condition(v, memo) for k, v in value.__dict__.items()}
        return twin
    return copy.deepcopy(value, memo)


def _copy_tree(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """`copy.deepcopy` for moto's expression trees: a node's state is its type name, its children and its parent,
    so a tree is copied node by node with each copy's parent set to the copied parent. Anything else (a node type
    with state of its own, or a subtree whose parent lies outside it) is copied by `copy.deepcopy`."""
    if isinstance(value, ast_nodes.Node) and value.parent is None:
        try:
            return _copy_node(value, None)
        except _NotAPlainTree:
            pass
    return copy.deepcopy(value, memo)


class _NotAPlainTree(Exception):
    pass


_NODE_STATE = frozenset({"type", "children", "parent"})


def _copy_node(node: Any, parent: Any) -> Any:
    state = dict(node.__dict__)
    if state.keys() != _NODE_STATE:
        raise _NotAPlainTree
    twin = object.__new__(type(node))
    children = state["children"]
    if children is not None:
        state["children"] = [
            _copy_node(c, twin) if isinstance(c, ast_nodes.Node) else copy.deepcopy(c) for c in children
        ]
    state["parent"] = parent
    twin.__dict__ = state
    return twin


class _TablesAsThemselves:
    """The `copy` of moto's DynamoDB models, except that a whole Table is not copied (the items a transaction names
    are: `_cheap_transaction_rollback`)."""

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _cheap_transaction_rollback() -> None:
    backend = dynamodb_models.DynamoDBBackend
    transact = backend.transact_write_items
    dynamodb_models.copy = _TablesAsThemselves

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        try:
            touched = [_touched_item(self, next(iter(entry.values()))) for entry in transact_items]
        except Exception:  # a malformed request: moto's own checks report it, before any write
            touched = []
        try:
            transact(self, transact_items)
        except Exception:
            for table, hash_key, range_key, attributes in reversed([t for t in touched if t is not None]):
                if table.get_item(hash_key, range_key) is not None:
                    table.delete_item(hash_key, range_key)
                if attributes is not None:
                    table.put_item(attributes)
            raise

    backend.transact_write_items = transact_write_items


def _touched_item(backend: Any, op: dict[str, Any]) -> tuple[Any, Any, Any, Any] | None:
    """(table, hash key, range key, a copy of the item's attributes or None) for one transaction entry."""
    table = backend.tables.get(op.get("TableName"))
    if table is None:
        return None
    key = op.get("Key") or {a: op["Item"][a] for a in (table.hash_key_attr, table.range_key_attr) if a}
    hash_key = DynamoType(key[table.hash_key_attr])
    range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    item = table.get_item(hash_key, range_key)
    return table, hash_key, range_key, copy.deepcopy(item.to_json()["Attributes"]) if item is not None else None
