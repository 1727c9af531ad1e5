"""Ingest: occurrences grouped into issues, one set-based transaction per group commit.

Read in this order (docs/adr/0009-set-based-ingest.md):

- ``usecase``: the use case (validate, read once, decide each occurrence, write, commit);
- ``batch``: the transaction's state and its reads, made once for the whole group;
- ``decide``: one occurrence against that state (duplicate, rollout, grouping, new issue);
- ``rules``: the pure counting rules (times, newest texts, regression);
- ``pending``: noise windows (occurrences waiting below a threshold);
- ``write``: the set-based writes and the rare after-effects;
- ``journal``: the counter journal (counts of large groups, folded later; ADR 0011), and
  ``recent``, the issues a process counted into lately;
- ``retry``: a transaction run again after a lost race or a deadlock;
- ``statements``: the driver-level SQL of each dialect, and ``driver``, which runs it on the
  transaction's DBAPI cursor (driver errors raised as SQLAlchemy's);
- ``outcomes``: the typed answers and their HTTP form;
- ``writer``: the group-commit writer that forms the groups;
- ``messages``: topic-shaped messages (``/ingest``, Kafka).
"""
