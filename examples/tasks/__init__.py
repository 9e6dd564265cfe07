"""The "hello world" of ``realtime``: a task list that every open tab shows live."""
