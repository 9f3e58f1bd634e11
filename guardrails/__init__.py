"""What makes it safe to let an agent near live equipment: who may ask, which rules
apply, the one Actuator that sends commands, and the audit log of all of it."""
