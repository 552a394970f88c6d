"""The microservice chassis: what every service is built from, so no service copies another."""
