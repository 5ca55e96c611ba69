"""Scale-out backends. ``llmlabel.scale.ray`` runs label / predict / taxonomy assignment on Ray Data.

Nothing here is imported by ``import llmlabel``; ``ray`` itself is imported only when a Ray backend runs
(``pip install "llmlabel[ray]"``).
"""
