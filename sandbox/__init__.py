"""Local Microsoft cloud: a Graph education emulator, an Entra identity endpoint and a Bot Connector stand-in."""
