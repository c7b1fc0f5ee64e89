"""The WPPConnect engine: the real @wppconnect-team/wppconnect in Chromium via a Node bridge."""
