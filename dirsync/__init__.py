"""Directory sync: keep the bridge's users in step with LDAP / Active Directory or a CSV file."""
