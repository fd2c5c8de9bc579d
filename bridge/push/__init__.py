"""HTTP push (SMS2Applications): inbound SMS POSTed or PUT to customer URLs, safely."""
