"""The release plan: one TOML file, validated into typed models."""

from cockpit.plan.loader import PlanError, PlanIssue, load_plan, parse_plan
from cockpit.plan.models import Plan

__all__ = ["Plan", "PlanError", "PlanIssue", "load_plan", "parse_plan"]
