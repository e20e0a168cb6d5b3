"""`siliconlab loadtest`: closed-loop and open-loop load against a Triton server, with answers checked."""
