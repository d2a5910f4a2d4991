# The 7P API server's everyday commands.

# list the recipes
default:
    @just --list

# serve the API on :8000 (embedded PostgreSQL when DATABASE_URL is unset)
serve:
    uv run sevenp serve

# run the whole test suite
test *args:
    uv run pytest {{args}}

# only the slow tests (long measurements the default run leaves out)
test-slow *args:
    uv run pytest -m slow {{args}}

# lint, format check and strict types
lint:
    uv run ruff check .
    uv run ruff format --check .
    uv run mypy

# apply pending database migrations
migrate:
    uv run sevenp migrate

# the capacity-planning harness (installs wrk when missing); e.g. `just bench --profile full`
bench *args:
    uv run sevenp bench {{args}}
