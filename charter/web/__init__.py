"""`charter web`: the founders' inbox, server-rendered, each decision signed with a passkey."""
