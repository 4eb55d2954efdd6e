"""The Twilio adapter: nudge's only door to Twilio, or to the sandbox emulator.

:mod:`~adapters.twilio.gateway` holds ``TwilioSmsGateway``; :mod:`~adapters.twilio.types`
what it returns and the ``SmsGateway`` protocol; :mod:`~adapters.twilio.errors` the failure
taxonomy (one exception class per class of failure, and the code table);
:mod:`~adapters.twilio.config` its ``TwilioConfig``; :mod:`~adapters.twilio.retries` the
bounded retries; :mod:`~adapters.twilio.numbers` the buying of sender numbers;
:mod:`~adapters.twilio.http` the SDK's HTTP clients, rewritten to reach the emulator;
:mod:`~adapters.twilio.webhooks` Twilio's webhook requests, their signatures checked.
Import from those modules: this package re-exports nothing.
"""
