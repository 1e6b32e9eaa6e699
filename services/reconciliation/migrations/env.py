from paykit.db.migrations import run_env_online

run_env_online()
