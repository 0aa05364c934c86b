"""Router: decides the responsible agency, computes deadlines, hosts the agency desk."""
