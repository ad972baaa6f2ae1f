"""Bridges to other frameworks; each is an optional extra and imported only when asked for."""
