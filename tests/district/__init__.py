"""A district: several Gradebot instances behind a load balancer on one PostgreSQL database."""
