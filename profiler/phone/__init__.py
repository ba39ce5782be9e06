"""The phone target: SNPE on Snapdragon phones over adb (pool, sharding, SDK tool prep, DLC cache), snpe_bench import, adb/ (device sessions, scheduler) and snpe/ (pure formats and command lines)."""
