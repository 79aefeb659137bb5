"""Backups that prove themselves: the restore drill and the rehearsal of the migration on the restored copy.

- :mod:`.drill` — :class:`Drill`: the backup restored into a throwaway PostgreSQL, compared with the source;
- :mod:`.rehearsal` — :class:`Rehearsal`: the migration, its rollback and the restore of the safety copy,
  run on that copy with their timings;
- :mod:`.local` — choosing, starting and removing the throwaway server (and those of killed runs);
- :mod:`.scratch` — the operator's own scratch database (``--drill-url``);
- :mod:`.restore`, :mod:`.compare` — restoring exactly the verified backup; reading the copy back;
- :mod:`.estimate` — room and time a drill needs (for the checklist).
"""
