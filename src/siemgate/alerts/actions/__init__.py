"""Alert actions: each module sends one kind (webhook, slack, email, syslog, event) and raises
DeliveryError, saying whether a retry may help, when it cannot."""
