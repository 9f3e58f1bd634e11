"""Daemons and the LLM agent runner; they act as MCP clients under their own identity.
Also home of `gridpilot demo`, which starts every part of an embedded site."""
