"""Incidents: the lifecycle by hand and from alerts, timelines and post-incident reviews."""
