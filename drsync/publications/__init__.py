"""What is protected: publications, publication-list files, reports."""
