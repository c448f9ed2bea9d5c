"""docs/benchmarks.md is bench/report.py's rendering of the committed bench/results.json, nothing typed."""

from __future__ import annotations

import json

from bench.report import AFTER, BEFORE, DOC, README, RESULTS, readme_with, render


def test_the_benchmark_document_is_generated_from_the_committed_results() -> None:
    results, before, after = (json.loads(path.read_text()) for path in (RESULTS, BEFORE, AFTER))
    assert DOC.read_text() == render(results, before, after), "regenerate: python bench/report.py --write"


def test_the_readme_table_is_generated_from_the_committed_results() -> None:
    readme = README.read_text()
    assert readme == readme_with(readme, json.loads(RESULTS.read_text())), "regenerate: python bench/report.py --write"


def test_every_ratio_in_the_results_comes_from_at_least_five_alternating_rounds() -> None:
    results = json.loads(RESULTS.read_text())
    durability = results["durability"]
    figures = [durability["decision"], *durability["sustained"], durability["sql_alone"]]
    figures += [results["outbox_to_backend"], results["brokers"]]
    figures += results.get("placement", {}).get("cpus", [])
    for figure in figures:
        rounds = figure["ratio"]["rounds"]
        assert len(rounds) >= 5 and len(figure["limit"]["rounds"]) == len(rounds)
        assert figure["ratio"]["min"] <= figure["ratio"]["median"] <= figure["ratio"]["max"]
        paired = [round(w / lim, 3) for w, lim in zip(figure["work"]["rounds"], figure["limit"]["rounds"], strict=True)]
        assert all(abs(p - r) <= 0.002 * max(1, abs(r)) for p, r in zip(paired, rounds, strict=True)), (
            "each round's ratio is its work over the limit measured beside it"
        )


def test_the_scaling_figures_are_generated_from_the_committed_results() -> None:
    from bench.scaling_report import BEGIN, DOC, END
    from bench.scaling_report import render as scaling

    results = json.loads(RESULTS.read_text())
    if "cluster" not in results:  # bench/cluster.py has not run on this box yet: the block is empty
        assert f"{BEGIN}\n{END}" in DOC.read_text()
        return
    block = scaling(results).removeprefix(BEGIN).removesuffix(END).strip()
    assert block in DOC.read_text(), "regenerate: python bench/scaling_report.py --write"


def test_the_drains_cpu_split_adds_up_to_its_total_in_every_round() -> None:
    outbox = json.loads(RESULTS.read_text())["outbox_to_backend"]
    parts = [outbox[f"{part}_cpu_us_per_report"]["rounds"] for part in ("publisher", "broker", "backend")]
    total = outbox["total_cpu_us_per_report"]["rounds"]
    assert len(total) == len(outbox["ratio"]["rounds"])
    for number, whole in enumerate(total):
        assert abs(sum(part[number] for part in parts) - whole) <= 1.5, "each round's parts were rounded alone"


def test_the_cpu_budget_is_the_limits_time_per_message_on_every_core() -> None:
    from bench.report import cpu_budget_paragraph

    def figure(median: float) -> dict[str, object]:
        return {"median": median, "min": median, "max": median, "rounds": [median] * 5}

    outbox = {
        "limit": figure(100_000.0),  # 10 µs a message: 20 µs of CPU on two cores
        "machine": {"cores": 2},
        "cpu_tick_us_per_report": 1,
        "publisher_cpu_us_per_report": figure(5.0),
        "broker_cpu_us_per_report": figure(1.0),
        "backend_cpu_us_per_report": figure(30.0),
        "total_cpu_us_per_report": figure(36.0),
    }
    text = " ".join(cpu_budget_paragraph(outbox).split())
    assert "leaves 10.0 µs per message, 20.0 µs of CPU on 2 cores" in text
    assert "The publisher alone uses 25% of that and the backend 150%" in text
