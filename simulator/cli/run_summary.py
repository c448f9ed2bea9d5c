"""The line a scripted run ends with: what it sold, what it reported, and where the reports went."""

from __future__ import annotations

import json
from typing import Any

import typer

from simulator.scenarios.reporting_world import ReportingWorld
from simulator.scenarios.runner import ScenarioResult


def route_of(world: ReportingWorld | None) -> dict[str, Any] | None:
    """Which broker the reports went through and which backends (client ids) took them."""
    if world is None or world.vendor is None:
        return None
    return {
        "broker": world.broker if world.guest_id is None else str(world.broker_address),
        "own_broker": world.guest_id is None,
        "vendor_backend": world.vendor.client_id,
        "issuer_backend": world.issuer.client_id if world.issuer else None,
    }


def _route_sentence(route: dict[str, Any]) -> str:
    if route["own_broker"]:
        return f"reports went through the {route['broker']} broker to this run's own vendor and issuer backends"
    return (
        f"reports went through {route['broker']} to this run's own backends (client ids "
        f"{route['vendor_backend']} and {route['issuer_backend'] or '-'}, clean sessions); backends already on that "
        "broker kept their sessions and refuse this run's throw-away machine key"
    )


def summary(
    result: ScenarioResult, as_json: bool, delivered: int | None = None, route: dict[str, Any] | None = None
) -> None:
    passed = len(result.expectations) - len(result.failures)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "event": "summary",
                    "sales": result.sales,
                    "revenue": result.revenue,
                    "denials": dict(result.denials),
                    "cancellations": dict(result.cancellations),
                    "refunds": result.refunds,
                    "operator_refunds": result.operator_refunds,
                    "operator_refunded": result.operator_refunded,
                    "reports_delivered": delivered,
                    "reports_held": result.held,
                    "next_release": result.next_release.isoformat() if result.next_release else None,
                    "route": route,
                    "expectations_passed": passed,
                    "expectations_failed": len(result.failures),
                },
                ensure_ascii=False,
            )
        )
        return
    for failure in result.failures:
        typer.echo(
            f"FAILED line {failure.line}: expect {failure.key}: expected {failure.expected!r}, got {failure.actual!r}"
        )
    denials = ", ".join(f"{k} {v}" for k, v in sorted(result.denials.items())) or "none"
    typer.echo(
        f"summary: sales {result.sales}, revenue NT${result.revenue}, refunds {result.refunds}, "
        + (
            f"operator refunds {result.operator_refunds} (NT${result.operator_refunded}), "
            if result.operator_refunds
            else ""
        )
        + f"denials {sum(result.denials.values())} ({denials}), "
        f"expectations {passed} passed, {len(result.failures)} failed"
        + (f", reports delivered to the vendor {delivered}" if delivered is not None else "")
        + (
            f", {result.held} report(s) held until {result.next_release:%Y-%m-%d %H:%M %Z}"
            if result.next_release
            else ""
        )
    )
    if route is not None:
        typer.echo(_route_sentence(route))
