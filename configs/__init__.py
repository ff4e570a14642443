"""What a user edits: YAML under this directory, typed by the pydantic models in these modules.

Every model refuses unknown keys; JSON Schema for editors is exported from the models.
"""
