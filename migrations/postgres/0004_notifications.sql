-- Who is told when a connection's job ends: webhook URLs by event
-- (JSON: {"on_failure": [...], "on_success": [...], "on_disable": [...]};
-- absent lists are empty). The URLs may hold tokens: they are masked in
-- what the API shows.
ALTER TABLE connections ADD COLUMN notifications TEXT NOT NULL DEFAULT '{}';
