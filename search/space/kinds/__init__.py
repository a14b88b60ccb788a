"""The kinds of search a space file can ask for, one module each: ``read(reader, template, num_classes)``
returns the kind's choices, whose ``draw(template, trial)`` samples one point."""
