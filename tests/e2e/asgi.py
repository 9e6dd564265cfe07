"""The application the test servers run: the demo's ASGI app with static files served, as
``manage.py runserver`` serves it in development (so pages have their stylesheet)."""

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from config.asgi import application as django_application

application = ASGIStaticFilesHandler(django_application)
