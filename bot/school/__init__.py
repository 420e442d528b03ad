"""What every room reads about a school: the teacher check, rosters, class work and where submissions stand."""
