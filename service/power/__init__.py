"""Power recommendations: domain capping, oversubscription and energy mode."""
