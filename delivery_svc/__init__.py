"""DeliveryService."""
