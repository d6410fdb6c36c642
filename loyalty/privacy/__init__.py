"""Privacy requests: a person's data exported, or erased, by their e-mail address
(:mod:`.requests`)."""
