"""The lender portal: server-rendered pages (inbox, lead, team, subscriptions, billing, returns, analytics,
integrations) that call the services and selectors of the apps below; no model of its own."""
