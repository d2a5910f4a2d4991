"""SQL per area, as named literal statements (`server.db.statement.Statement`)."""
