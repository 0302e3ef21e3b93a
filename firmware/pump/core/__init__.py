"""Pure pump logic: no hardware, no clock; time always arrives as an argument."""
