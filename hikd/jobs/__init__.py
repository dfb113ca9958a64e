"""Jobs: the scheduler, the ``[[jobs]]`` config, the `Job` base and the registry of kinds
(the kinds themselves live in `hikd.recorders`)."""
