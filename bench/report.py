"""docs/benchmarks.md, generated from bench/results.json: every figure in it is read from that file.

    python bench/report.py            print the document
    python bench/report.py --write    write docs/benchmarks.md and the README's table (make bench does, last)
tests/bench/test_benchmarks_doc.py fails when the document and the results file disagree.
Not a benchmark itself: `make bench` runs it last.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESTOCK_EVERY  # noqa: E402
from bench.compare import BEGIN, END, replace_block  # noqa: E402
from bench.compare import table as refactor_table  # noqa: E402
from bench.vend_sql import WAL_PAGES  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
DOC = HERE.parent / "docs" / "benchmarks.md"
README = HERE.parent / "README.md"
README_BEGIN, README_END = "<!-- bench/report.py: begin -->", "<!-- bench/report.py: end -->"
BEFORE, AFTER = HERE / "results-before-refactor.json", HERE / "results-after-refactor.json"

Results = dict[str, Any]


def spread(figure: Mapping[str, Any], fmt: str = "{:,.2f}") -> str:
    """``median (min–max)`` of a figure measured over rounds."""
    return f"{fmt.format(figure['median'])} ({fmt.format(figure['min'])}–{fmt.format(figure['max'])})"


def verdict(met: bool) -> str:
    return "**met**" if met else "**missed**"


def shares_table(profile: Mapping[str, Any], top: int = 6) -> str:
    rows = ["| where the busy samples are | share |", "|---|---|"]
    ranked = sorted(profile["shares"].items(), key=lambda item: (-item[1], item[0]))[:top]
    rows += [f"| {label} | {share:.0%} |" for label, share in ranked]
    return "\n".join(rows) + f"\n\n({profile['samples']:,} samples)"


def machine_line(results: Results) -> str:
    machine = results["durability"]["machine"]
    mosquitto = results["outbox_to_backend"].get("mosquitto", "Mosquitto")
    return (
        f"{machine['cores']} cores ({machine['cpu']}), {machine.get('memory_gib', '?')} GiB, "
        f"{machine.get('os', 'Linux')}, Python {machine['python']}, SQLite {machine['sqlite']}, {mosquitto}; "
        f"`make bench` started {machine['when']}"
    )


def summary(results: Results) -> str:
    durability, outbox, fleet = results["durability"], results["outbox_to_backend"], results["fleet"]
    decision = durability["decision"]
    thousand = next((run for run in fleet["runs"] if run["machines"] == 1000), fleet["runs"][-1])
    rows = [
        "| figure | target | measured: median (range) over rounds | beside it, same run | |",
        "|---|---|---|---|---|",
        f"| tap → decision p99, everything on | ≤ 2 ms | {spread(decision['work'], '{:.2f}')} ms "
        f"| raw commit p99 {spread(decision['limit'], '{:.2f}')} ms "
        f"| {verdict(decision['work']['median'] <= durability['targets']['decision_p99_ms_max'])} |",
        *[
            f"| sustained vends/s ÷ (raw commits/s ÷ 2), {run['vends']:,} vends | ≥ 0.5 | {spread(run['ratio'])} "
            f"| {spread(run['work'], '{:,.0f}')} vends/s against {spread(run['limit'], '{:,.0f}')} "
            f"| {verdict(run['ratio']['median'] >= durability['targets']['sustained_share_min'])} |"
            for run in durability["sustained"]
        ],
        f"| outbox → backend DB ÷ `mosquitto_sub` drain | ≥ 1.0 | {spread(outbox['ratio'], '{:.3f}')} "
        f"| {spread(outbox['work'], '{:,.0f}')} reports/s against {spread(outbox['limit'], '{:,.0f}')} msgs/s "
        f"| {verdict(outbox['ratio']['median'] >= outbox['target_ratio_min'])} |",
        f"| {thousand['machines']:,} machines × one school day, wall | ≤ 60 s | {thousand['wall_s']:.1f} s "
        f"| the same machine-days with no network: {thousand['simulation_only_wall_s']:.1f} s "
        f"| {verdict(thousand['wall_s'] <= fleet['targets']['wall_s_1000_max'])} |",
        f"| memory per open machine | ≤ 2 MB | {fleet['rss_mb_per_open_machine']:.2f} MB RSS | — "
        f"| {verdict(fleet['rss_mb_per_open_machine'] <= fleet['targets']['rss_mb_per_machine_max'])} |",
    ]
    dispatch = results.get("dispatch")
    if dispatch:  # bench/dispatch.py: the compiled dispatcher against a hand-written floor
        cost = dispatch["cost_over_floor"]
        rows.append(
            f"| a vend's six transitions, compiled dispatch ÷ hand-written floor "
            f"| ≤ {dispatch['target_cost_over_floor_max']} × | {spread(cost)} × "
            f"| floor {dispatch['floor_vends_per_s']['median']:,.0f} vends/s, compiled "
            f"{dispatch['compiled_vends_per_s']['median']:,.0f}, `transitions` "
            f"{dispatch['transitions_vends_per_s']:,.0f} "
            f"| {verdict(cost['median'] <= dispatch['target_cost_over_floor_max'])} |"
        )
    card = results.get("card_latency")
    if card and "tap_to_decision" in card:  # bench/card_latency.py: a card-mode sale (docs/payments.md)
        rows.append(
            f"| card-mode sale through a PN532 at {card['baud']:,} baud, tap → decision p99 (controller, "
            f"journal, purse) | ≤ {card['target']} × wire time | {card['tap_to_decision']['p99_ms']:.1f} ms "
            f"= {card['p99_over_floor']:.2f} × | the bytes it needed take {card['wire_floor']['p50_ms']:.1f} ms "
            f"on the wire | {verdict(card['met'])} |"
        )
    account = results.get("account_latency")
    if account:  # bench/account_latency.py: an account-mode sale, the issuer in its own process (docs/payments.md)
        online, offline = account["online"], account["offline"]
        rows += [
            f"| account-mode sale through Mosquitto (TLS, ACL), the issuer backend in its own process, tap → "
            f"decision p99 | ≤ {account['online_target_ms']:.0f} ms | {online['p99_ms']:.1f} ms "
            f"| p50 {online['p50_ms']:.1f} ms: an inquiry and an authorisation, each signed and sealed both ways "
            f"| {verdict(online['p99_ms'] <= account['online_target_ms'])} |",
            f"| the same with the issuer silent (SIGSTOP), timeout {account['timeout_ms']} ms, p99 "
            f"| ≤ {account['offline_target_ms']:.0f} ms | {offline['p99_ms']:.1f} ms | p50 {offline['p50_ms']:.1f} ms: "
            f"the inquiry's timeout, then the offline approval | "
            f"{verdict(offline['p99_ms'] <= account['offline_target_ms'])} |",
        ]
    return "\n".join(rows)


def decision_section(results: Results) -> str:
    durability = results["durability"]
    decision = durability["decision"]
    return f"""## Tap → authorisation decision, against one durable commit

`python bench/durability.py` — {decision["taps_per_round"]:,} taps per round on the demo machine (500
staff cards, selection first), timed from the tap to the decision (debit committed, or denial
journaled). Everything is switched on: the machine's reporter writes every report into the outbox in
the same commits, and its publisher batches and signs the outbox to a real Mosquitto, where the
vendor and issuer backends store and ack from processes of their own (as deployed: a back office
never shares the machine's processor or disk). The floor is one SQLite commit with the machine's own
settings (WAL, `synchronous=FULL`) on the same disk; rounds alternate commits and taps.

| | p99, median (range) over {len(decision["work"]["rounds"])} rounds, ms |
|---|---|
| raw durable commit (one small insert) | {spread(decision["limit"], "{:.3f}")} |
| tap → decision | {spread(decision["work"], "{:.3f}")} |
| ratio | {spread(decision["ratio"])} |

Target p99 ≤ 2 ms: {verdict(decision["work"]["median"] <= durability["targets"]["decision_p99_ms_max"])}.
The publisher's outbox connection deletes acknowledged rows with `synchronous=NORMAL` (a lost delete
is a resend the receiver recognises), so it never holds the write lock through an fsync that the next
debit waits for. Taken through a real PN532 driver on a pseudo-terminal, see
[`docs/readers.md`](readers.md#figures).
"""


def floors_paragraph(durability: dict[str, Any], wake: dict[str, Any] | None) -> str:
    """The measured split of a vend at the largest scale: its SQL alone, the rest, and what its commits write."""
    floor, frames = durability.get("sql_alone"), durability.get("wal_frames")
    if floor is None or frames is None:
        return "(floors not measured: run bench/durability.py)"
    whole = next(run for run in durability["sustained"] if run["vends"] == floor["vends"])
    vend_us, sql_us = 1e6 / whole["work"]["median"], 1e6 / floor["work"]["median"]
    budget_us = 1e6 / (durability["targets"]["sustained_share_min"] * whole["limit"]["median"])
    fills = WAL_PAGES / frames["per_vend"]
    raw_pair_us, python_us = 1e6 / whole["limit"]["median"], vend_us - sql_us
    storage_at_floor = raw_pair_us / (raw_pair_us + python_us)  # the SQL exactly two raw commits, the Python kept
    growing = ", ".join(
        f"{min(1.0, WAL_PAGES / (2 * run['vends'])):.0%} at {run['vends']:,} vends" for run in durability["sustained"]
    )
    return f"""Measured beside it (same script, `bench/vend_sql.py`): the {floor["vends"]:,} vends' own SQL, every
statement recorded with its parameters ({floor["statements_per_vend"]} a vend) and replayed on the state
database as it was before them with no controller around it, runs at {spread(floor["work"], "{:,.0f}")}
vends/s: a share of {spread(floor["ratio"])} against the same raw commits. So of a whole vend's
{vend_us:.0f} µs, the SQL and its two commits take {sql_us:.0f} µs and the controller's Python the other
{python_us:.0f} µs, where the target allows {budget_us:.0f} µs for all of it. With the SQL cut to its
floor, exactly the two raw commits ({raw_pair_us:.0f} µs), and the Python as it is, the share would be
{storage_at_floor:.2f}; with the SQL as it is, the Python would have to fit in
{budget_us - sql_us:.0f} µs. The commits are not the raw commit's: a vend writes
{frames["per_vend"]} WAL frames (journal, vend, card, stock, outbox row and their indexes) against
{frames["per_raw_commit"]} for the raw commit. And the raw limit rises with the run's length because
SQLite rewrites its WAL in place once the first checkpoint has run: a raw commit takes
{frames["wal_growing_us"]:.0f} µs (median) while the WAL file grows and {frames["wal_reused_us"]:.0f} µs
once it is reused. The raw limit's first {WAL_PAGES:,} commits grow its WAL, so the part of its
commits that do is {growing}; a vend fills its fresh WAL after about {fills:.0f} vends. Only the
largest run compares the two mostly in the same, steady, state.{wake_sentence(wake, vend_us - budget_us)}"""


def wake_sentence(wake: dict[str, Any] | None, missed_by_us: float) -> str:
    """What sleeping through its two fsyncs costs the vend's own code (bench/fsync_wake.py), when measured."""
    if wake is None:
        return ""
    gap = "a target met"
    if missed_by_us > 0:
        gap = f"the {missed_by_us:.0f} µs by which the largest run misses the target"
    return f"""

Part of the vend's cost is not in any statement: `python bench/fsync_wake.py` runs {wake["vends"]:,} vends on a RAM
disk, each of the two commits followed by a pause as long as a raw durable commit on the disk just before
({spread(wake["pause_us"], "{:.0f}")} µs), and the process either sleeps through the pauses, as it does in
fsync, or spins through them. The vend's own code (the pauses taken out) takes
{spread(wake["sleeping_us_per_vend"], "{:.0f}")} µs when it slept and
{spread(wake["spinning_us_per_vend"], "{:.0f}")} µs when it spun:
{spread(wake["lost_us_per_vend"], "{:.0f}")} µs a vend lost to waking from its two sleeps on this
virtual machine, beside {gap}."""


def levers_paragraph(levers: dict[str, Any] | None, durability: dict[str, Any]) -> str:
    """Storage layouts measured against the machine's own (bench/vend_levers.py), and what the disk's waits cost."""
    if levers is None:
        return ""
    own = levers["arms"][levers["own"]]
    others = {name: arm for name, arm in levers["arms"].items() if name != levers["own"]}
    rows = [
        "| layout | what it changes | WAL frames a vend | vends/s ÷ own | share | share ÷ own "
        "| CPU µs a vend, user + sys |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, arm in {levers["own"]: own, **others}.items():
        rows.append(
            f"| {name} | {arm['changes']} | {arm['frames_per_vend']['median']:.1f} | {spread(arm['ratio'], '{:.3f}')} "
            f"| {spread(arm['share'], '{:.3f}')} | {spread(arm['share_ratio'], '{:.3f}')} "
            f"| {arm['user_us']['median']:.0f} + {arm['sys_us']['median']:.0f} |"
        )
    kept = [name for name, arm in others.items() if arm["share_ratio"]["min"] > 1]
    verdict_line = (
        "None raises the share in every round, so none is kept."
        if not kept
        else f"Raising the share in every round: {', '.join(kept)}."
    )
    fewer = [own["frames_per_vend"]["median"] - arm["frames_per_vend"]["median"] for arm in others.values()]
    saved = f"{min(f for f in fewer if f > 0):.1f}–{max(fewer):.1f}" if any(f > 0 for f in fewer) else "no"
    ram = levers["ram"]
    same_scale = [run for run in durability["sustained"] if run["vends"] == levers["vends"]]
    raw = f", beside the {5e5 / same_scale[0]['limit']['median']:.0f} µs a raw commit takes" if same_scale else ""
    return f"""

Storage layouts tried against the machine's own (`python bench/vend_levers.py`: {levers["vends"]:,} vends per
arm, each round on fresh machines with the machine's own layout first; an arm's share is the target's,
against raw commits with the arm's own settings measured just before its vends; every arm's database is
checked afterwards to still hold its layout):

{chr(10).join(rows)}

{verdict_line} Fewer frames ({saved} fewer a vend, the clustered tables) and smaller ones (the pages'
arm, whose raw commit gains as the vends do) move the share by less than the rounds' spread. The same
vends on a RAM disk, where no commit waits,
take {spread(ram["user_us"], "{:.0f}")} µs of user CPU a vend against {own["user_us"]["median"]:.0f} µs on
the disk: the same code takes {own["user_us"]["median"] - ram["user_us"]["median"]:.0f} µs more CPU once it
has slept in the two fsyncs{raw}."""


def sustained_section(results: Results) -> str:
    durability = results["durability"]
    rows = [
        "| vends | vends/s | raw commits/s ÷ 2 | share (target ≥ 0.5) |",
        "|---|---|---|---|",
    ]
    for run in durability["sustained"]:
        rows.append(
            f"| {run['vends']:,} | {spread(run['work'], '{:,.0f}')} | {spread(run['limit'], '{:,.0f}')} "
            f"| {spread(run['ratio'])} |"
        )
    met = all(run["ratio"]["median"] >= durability["targets"]["sustained_share_min"] for run in durability["sustained"])
    profile = results.get("profiles", {}).get("vend", {}).get("machine")
    limits = (
        ""
        if met or profile is None
        else f"""
What limits it, from `bench/profiles/vend.svg` (py-spy, the same loop):

{shares_table(profile)}

{floors_paragraph(durability, results.get("fsync_wake"))}{levers_paragraph(results.get("vend_levers"), durability)}

Of the Python around the SQL, the profile led to three cuts: a record's report fields were
resolved from its type hints on every report, a visit's pseudonym was computed three times, and
`transitions` dispatched the six transitions with an event object, a by-name lookup per callback
and debug log calls each time; the declaration is now compiled into a table once
(`firmware/controller/dispatch.py`, held to `transitions`' own semantics by a property test; its
cost against a hand-written dispatcher is in the targets table). Then, by the CPU time of a vend
on a RAM disk and these figures: the JSON the machine stores (journal data, outbox and held
reports) is written by msgspec in C; a durable step is a small class, not a generator; a display
event is rendered only when something listens; the day's spend is read only for a card with a
daily limit; the stock comes back with its update (`RETURNING`); reports are numbered in memory
(read once, forgotten on a rollback, the floor recorded by the publisher when it deletes what was
acked: docs/reliability.md) instead of a counter row in every drop; a sale's record is parsed once
for its report; record fields and the visit's base32 are looked up, not recomputed. The durable commits stay: the debit
is on disk before the motor turns, the drop result before the session ends; a single commit per vend
is not allowed.
"""
    )
    return f"""## Sustained vends/s of one machine, against raw commits/s

Same script: full vends (select, tap, debit, motor, drop), two durable commits each, on a fresh
machine per round with the reporter on, against raw commits/s for the same number of commits
measured just before each round. Target ≥ 0.5: {verdict(met)}.

{chr(10).join(rows)}
{placement_paragraph(results.get("placement"))}{limits}"""


def placement_paragraph(placement: dict[str, Any] | None) -> str:
    """The largest run's share with the process pinned to each CPU in turn (bench/placement.py), if measured."""
    if placement is None:
        return ""
    cpus = placement["cpus"]
    rows = ["| pinned to | vends/s | raw commits/s ÷ 2 | share | the disk's interrupts taken on that CPU |"]
    rows.append("|---|---|---|---|---|")
    for cpu in cpus:
        here = cpu["disk_interrupts_here"]
        rows.append(
            f"| CPU {cpu['cpu']} | {spread(cpu['work'], '{:,.0f}')} | {spread(cpu['limit'], '{:,.0f}')} "
            f"| {spread(cpu['ratio'])} | {'—' if here is None else f'{here:.0%}'} |"
        )
    best = max(cpus, key=lambda cpu: cpu["ratio"]["median"])
    worst = min(cpus, key=lambda cpu: cpu["ratio"]["median"])
    fewest, most = best["disk_interrupts_here"], worst["disk_interrupts_here"]
    away = fewest is not None and most is not None and fewest < most
    reading = (
        "The share is highest on the CPU that takes fewer of the disk's interrupts. A commit's fsync wakes a "
        "process on the CPU that takes the interrupt locally, and one on the other CPU through an "
        "inter-processor interrupt; that costs a raw commit (nearly all waiting) more of its time than a vend "
        "(half of it its own code)."
        if away
        else "Here the placement does not follow the disk's interrupts."
    )
    return f"""
Where the scheduler puts the process moves the share (`python bench/placement.py`: {placement["vends"]:,}
vends a round, the whole process, limit and work alike, pinned to one CPU, then to the other; rounds
alternate limit and work as above):

{chr(10).join(rows)}

{reading} Pinned to CPU {best["cpu"]} the share is {best["ratio"]["median"]:.2f}, to CPU {worst["cpu"]}
{worst["ratio"]["median"]:.2f}. The target is judged on the unpinned rows above, as a machine runs; no
placement is chosen to meet it.
"""


def cpu_budget_paragraph(outbox: dict[str, Any]) -> str:
    """Each process's CPU per report in the drain, against what the limit's rate leaves on the box's cores."""
    per_message = 1e6 / outbox["limit"]["median"]
    cores = outbox.get("machine", {}).get("cores", 2)
    part = {name: outbox[f"{name}_cpu_us_per_report"] for name in ("publisher", "broker", "backend")}
    total, tick = outbox["total_cpu_us_per_report"], outbox["cpu_tick_us_per_report"]
    return f"""
What limits it, measured in the same rounds from /proc (to ±{tick:g} µs per report, its tick): per
report, the machine's publisher spends {spread(part["publisher"], "{:.0f}")} µs of CPU, Mosquitto
{spread(part["broker"], "{:.0f}")} µs and the vendor backend {spread(part["backend"], "{:.0f}")} µs,
{spread(total, "{:.0f}")} µs in all. Draining at the limit's rate leaves {per_message:.1f} µs per message,
{cores * per_message:.1f} µs of CPU on {cores} cores if every process kept a core busy all the time.
The publisher alone uses {part["publisher"]["median"] / (cores * per_message):.0%} of that and the
backend {part["backend"]["median"] / (cores * per_message):.0%}: both ends are per report and in Python
(the outbox row, the batch's entry and digest, the delete after the ack; the message's tuple, the
payload's dict, the store's row, the contract's verdict), so no tuning of one end closes the gap;
the floor below says what even a redesign of both could reach.
"""


def floor_paragraph(outbox: dict[str, Any], floor: dict[str, Any]) -> str:
    """The drain's floor (bench/drain_floor.py) against the CPU the limit's rate leaves: reachable or not.

    The verdict is drawn from the most favourable rounds of each part, so it never claims more than
    every round supports.
    """
    per_message = 1e6 / outbox["limit"]["median"]
    budget = outbox.get("machine", {}).get("cores", 2) * per_message
    parts = [floor["publisher_us_per_report"], floor["backend_us_per_report"], outbox["broker_cpu_us_per_report"]]
    whole, best = sum(part["median"] for part in parts), sum(part["min"] for part in parts)
    backend = floor["backend_us_per_report"]
    rest = outbox["total_cpu_us_per_report"]["median"] - whole  # what the drain spends beyond the floor

    def steps(side: str) -> str:
        return ", ".join(f"{step} {floor[side][step]['median']:.1f}" for step in floor["steps"][side])

    if best > budget:
        overall = "even the most favourable rounds exceed it: no implementation of this contract reaches 1.0 here"
    elif whole > budget:
        overall = (
            f"the median floor alone is over it, and the most favourable rounds ({best:.1f} µs) leave "
            f"{budget - best:.1f} µs for all the floor leaves out, where the drain's own rounds spend "
            f"{rest:.0f} µs: out of reach for this contract here"
        )
    else:
        overall = f"within reach in principle: the rest of the drain's CPU ({rest:.0f} µs) is per-report Python"
    pace = (
        f"in every round more than the {per_message:.1f} µs a report may take on one core, which is all one "
        "backend process gets"
        if backend["min"] > per_message
        else f"in its best round within the {per_message:.1f} µs a report may take on one core"
    )
    broker = outbox["broker_cpu_us_per_report"]["median"]
    return f"""
The floor, measured (`python bench/drain_floor.py`, {len(backend["rounds"])} rounds): only the C calls a
report cannot do without under this contract, each timed alone with its inputs made beforehand — no
MQTT client, no acks, no Python per report but the loop that makes each call. Per report, the publisher's floor is
{spread(floor["publisher_us_per_report"], "{:.1f}")} µs of CPU ({steps("publisher")}) and the backend's
{spread(backend, "{:.1f}")} µs ({steps("backend")}): {pace}. With Mosquitto's {broker:.0f} µs
the whole floor is {whole:.1f} µs, {whole / budget:.0%} of the {budget:.1f} µs the box's cores give at
the limit's rate; {overall}.
"""


def carried(outbox: dict[str, Any]) -> str:
    """How many MQTT messages the drain took (its heartbeat and status included), when the run counted them."""
    if "mqtt_messages_sent" not in outbox:
        return ""
    return f"""
A stock snapshot that a newer one on its retained topic replaces rides in the batch instead of
travelling alone and splitting the run (only the newest could ever be read retained): the
{outbox["messages"]:,} reports, with a restock every {RESTOCK_EVERY} sales, go out in
{spread(outbox["mqtt_messages_sent"], "{:,.0f}")} MQTT messages."""


def outbox_section(results: Results, after: Results) -> str:
    outbox = results["outbox_to_backend"]
    met = outbox["ratio"]["median"] >= outbox["target_ratio_min"]
    profiles = results.get("profiles", {}).get("outbox", {})
    limits = ""
    if not met and "backend" in profiles:
        limits = f"""
What limits it, from `bench/profiles/outbox.svg` (py-spy, both processes, the same drain). The
vendor backend, which the publisher waits on:

{shares_table(profiles["backend"])}

and the machine's publisher:

{shares_table(profiles["machine"])}

Batching removed what made the old design slow per message — a PUBLISH, a PUBACK, an Ed25519
signature and verification, a backend ack and an outbox delete for every report — and the profile of
the batched path led to the rest: each report decoded and held to its contract in one pass of C
(msgspec types made from `docs/asyncapi.yaml`, JSON Schema only where they say no), a batch stored
with one `executemany` after one lookup per machine, the planner counting bytes without encoding.{carried(outbox)}
"""
    if not met and "cpu_tick_us_per_report" in outbox:
        limits += cpu_budget_paragraph(outbox)
    if not met and "drain_floor" in results:
        limits += floor_paragraph(outbox, results["drain_floor"])
    return f"""## Machine outbox → backend database, against the raw drain

`python bench/outbox_throughput.py` — {outbox["messages"]:,} sale reports wait in a machine's outbox
(sold while the broker was unreachable). Limit: the same reports, each signed and sent as its own QoS 1
message as the old design did ({outbox.get("report_bytes_signed", "?")} bytes each), drained by the
C `mosquitto_sub` from a queued persistent session. Work: a copy of the outbox, the vendor backend in
its own process, the publisher started; the clock runs until the backend has stored every report
durably and acked it and the machine has deleted it. Each round on a fresh Mosquitto; rounds
alternate.

| path | median (range) over {len(outbox["ratio"]["rounds"])} rounds |
|---|---|
| outbox → backend DB: batched, signed once per batch, stored, acked | {spread(outbox["work"], "{:,.0f}")} reports/s |
| `mosquitto_sub` draining the same reports, one message each | {spread(outbox["limit"], "{:,.0f}")} msgs/s |
| ratio | {spread(outbox["ratio"], "{:.3f}")} |

Target ≥ 1.0: {verdict(met)}. Before batching and signatures, one message and one ack per report, this
path ran at {after["outbox_to_backend"]["outbox_to_backend_msgs_per_s"]:,.0f} reports/s (the refactor's
"after" column below).
{limits}"""


def fleet_section(results: Results) -> str:
    fleet = results["fleet"]
    rows = [
        "| machines | visits | reports | delivered | duplicates | wall | the same days, no network "
        "| CPU s (parent and workers) | peak worker RSS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in fleet["runs"]:
        rows.append(
            f"| {run['machines']:,} | {run['visits']:,} | {run['reports']:,} | {run['delivered']:,} "
            f"| {run['duplicates']:,} | {run['wall_s']:.1f} s | {run['simulation_only_wall_s']:.1f} s "
            f"| {run['cpu_s_parent_and_workers']:.0f} | {run['peak_worker_rss_mb']:.0f} MB |"
        )
    thousand = next((run for run in fleet["runs"] if run["machines"] == 1000), None)
    met = thousand is not None and thousand["wall_s"] <= fleet["targets"]["wall_s_1000_max"]
    profile = results.get("profiles", {}).get("machine_day", {}).get("machine")
    limits = ""
    if not met and thousand is not None and profile is not None:
        network = thousand["wall_s"] - thousand["simulation_only_wall_s"]
        limits = f"""
What limits it, in two parts. First the machines themselves: with no broker,
no publisher and no backend at all, the same {thousand["machines"]:,} machine-days take
{thousand["simulation_only_wall_s"]:.1f} s on {fleet["processes"]} processes — the controller, journal
and outbox work of {thousand["visits"]:,} visits, about
{thousand["simulation_only_wall_s"] * fleet["processes"] * 1000 / thousand["visits"]:.2f} ms of CPU
each. From `bench/profiles/machine_day.svg` (py-spy, fleet machine-days):

{shares_table(profile)}

Then the network side, {network:.0f} s more on the same {fleet["processes"]} cores: per machine a TLS
certificate issued and a TLS handshake, a publisher with its status and heartbeat messages signed and
verified one by one, Mosquitto, and the backends storing {thousand["reports"]:,} reports in the parent
process. Batching took the per-report messages out of it (a machine's day drains as one batch or
two); what remains is each machine's connection work and the backends' per-report parsing and
storing, on the cores the machines also need. Lifting the figure means the per-visit work of the vend path
(above), the backends on another host as deployed, or more cores (`--processes`).
"""
    return f"""## Fleet: a district on one laptop

`python bench/fleet.py` — N machines × one school day ({fleet["students"]} students each, the arrival
model in `docs/scaling.md`), {fleet["processes"]} worker processes, real Mosquitto (TLS, ACL, a
certificate per machine), vendor and issuer backends storing in the parent process; every report
checked delivered exactly once. Beside each run, in the same run, its floor: the same machine-days
on the same number of processes with no network.

{chr(10).join(rows)}

Target 1,000 machines in ≤ 60 s: {verdict(met)}. Memory: **{fleet["rss_mb_per_open_machine"]:.2f} MB
RSS per open machine** (200 controllers with their SQLite connections held open in one process;
target ≤ 2 MB: {verdict(fleet["rss_mb_per_open_machine"] <= fleet["targets"]["rss_mb_per_machine_max"])});
workers run machines one after another, so a worker's peak RSS stays flat whatever N is. The fleet
picks Mosquitto when it is installed; on the embedded broker it says so in its summary, since amqtt
(below) cannot carry a district.
{limits}"""


def brokers_section(results: Results) -> str:
    brokers = results["brokers"]
    return f"""## Embedded broker against Mosquitto

`python bench/brokers.py` — {brokers["messages_per_round"]:,} QoS 1 sale payloads per round, one paho
publisher, one paho subscriber; rounds alternate Mosquitto and the embedded broker.

| broker | msgs/s, median (range) |
|---|---|
| embedded amqtt | {spread(brokers["work"], "{:,.0f}")} |
| Mosquitto | {spread(brokers["limit"], "{:,.0f}")} |
| embedded ÷ Mosquitto | {spread(brokers["ratio"])} |

Both sides are bounded by Python clients as well as by the broker; amqtt's own cost shows as the
gap. This is why the embedded broker is the default only where the load is one machine (`vending
run`, `make demo`), and why the fleet and the soak run on Mosquitto (see `docs/scaling.md`).
"""


def render(results: Results, before: Results, after: Results) -> str:
    return f"""# Benchmarks

<!-- generated by bench/report.py from bench/results.json; edit the generator, not this file -->

`make bench` reruns every script in `bench/`; each merges its figures into `bench/results.json`
under its own key, and `bench/report.py` writes this document from that file
(`tests/bench/test_benchmarks_doc.py` fails when the two disagree). No test asserts on time.

**Method.** The raw limits on a shared box drift by 2× within a minute, so no figure is a ratio of a
limit measured once to work measured later. Each ratio alternates the two sides in rounds (limit,
work, limit, work, …; `interleaved` in `bench/common.py`), pairs each work with the limit measured
just before it, and reports the median and the range of at least 5 rounds; every round's value is
kept in `bench/results.json`. Disk-backed temporary directories unless said otherwise.

Machine: {machine_line(results)}.

## Targets

{summary(results)}

{decision_section(results)}
{sustained_section(results)}
{outbox_section(results, after)}
{fleet_section(results)}
{brokers_section(results)}
## Readers, idle CPU and privacy

`bench/reader_latency.py` and `bench/idle_cpu.py` measure a tap through the real PN532 driver on a
pseudo-terminal and the idle CPU of `vending serve`; their table is generated into
[`docs/readers.md`](readers.md#figures). `bench/privacy.py` runs the vendor + issuer join over a
term and writes its table into [`docs/privacy.md`](privacy.md#what-a-join-of-two-parties-would-reveal).

## Profiles

`python bench/profiles.py` records, with py-spy, the three code paths above — the vend loop, fleet
machine-days, the outbox drain (both processes) — as flame graphs in `bench/profiles/*.svg` and
collapsed stacks in `bench/profiles/*.txt`; the shares quoted above are computed from those stacks
and kept under `profiles` in `bench/results.json`.

## The house-in-order refactor (issue 11): before and after

Issue 11 moved code between packages and promised the same figures within noise. Both columns are
`make bench` on the same 2-core machine on the same day, before and after the refactor, kept as
`bench/results-before-refactor.json` and `bench/results-after-refactor.json` in the figures' format
of that time (one pass each, not rounds; outbox figures per message, before batching):

{BEGIN}
{refactor_table(before, after)}{END}
"""


def readme_with(readme: str, results: Results) -> str:
    """The README with its benchmark table (the targets summary) replaced by the one for ``results``."""
    return replace_block(readme, f"{summary(results)}\n", README_BEGIN, README_END)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {DOC.relative_to(HERE.parent)}")
    args = parser.parse_args(argv)
    results, before, after = (json.loads(path.read_text()) for path in (RESULTS, BEFORE, AFTER))
    text = render(results, before, after)
    if args.write:
        DOC.write_text(text)
        README.write_text(readme_with(README.read_text(), results))
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
