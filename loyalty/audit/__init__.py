"""The audit log: who did what, when and from where (issue 14). ``log`` records and
searches; ``views`` is ``/admin/audit``."""
