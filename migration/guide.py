"""The guide's own words that every front end shows after a migration (headless, wizard, audit)."""

SUCCESS_LINES = (
    "The database_backups table has been added to your database.",
    "You can now use the backup system in your admin panel.",
)
NEXT_STEPS = (
    "Next steps (the guide's Post-Migration Steps):",
    "  1. Verify the migration: migrate-tui verify",
    "  2. Add CRON_SECRET to your .env file: migrate-tui cron-secret",
    "  3. Deploy your updated application with the backup system code",
    "  4. Test it: open /admin/backups, create a manual backup, and check it appears in your S3/R2 storage",
)
# The guide's "Test Backup System", step by step (the wizard's Post-migration screen ticks them off).
TEST_STEPS = (
    "Navigate to /admin/backups in your admin panel",
    "Create a manual backup to test functionality",
    "Verify backup appears in your S3/R2 storage",
)
DEPLOY_STEP = "Deploy your updated application with the backup system code"
