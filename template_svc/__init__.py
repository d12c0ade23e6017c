"""TemplateService."""
