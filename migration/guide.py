"""The guide's own words that every front end shows after a migration (headless, wizard, audit)."""

SUCCESS_LINES = (
    "The database_backups table has been added to your database.",
    "You can now use the backup system in your admin panel.",
)
NEXT_STEPS = (
    "Next steps:",
    "  1. Add CRON_SECRET (a long random string) to your .env file",
    "  2. Deploy your updated application with the backup system code",
    "  3. Test it: open /admin/backups, create a manual backup, and check it appears in your S3/R2 storage",
)
