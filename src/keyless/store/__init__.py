"""SQLAlchemy models, repositories implementing `keyless.domain.ports`, and Alembic migrations."""
