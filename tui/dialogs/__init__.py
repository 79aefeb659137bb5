"""The wizard's modal dialogs: a yes/no question, the typed confirmation of a DROP, an error, the keys."""
